// The seam for instrumentation of each physical send (uvfetch/otel): one hook, installed by an
// instrumentation's enable(); while none is, a send reads one variable and does nothing more.

/** What the hook is told at the end of a send: the response head, or the error. */
export interface SendResult {
  status: number;
  httpVersion: string;
}

export interface SendHook {
  /**
   * A send is about to be submitted: `headers` is its flat [name, value, …] header list, to which
   * the hook may append (trace context). `resend`: how many sends of the same call came before it
   * (retries and redirects). Returns a token given back to end().
   */
  start(method: string, url: URL, headers: string[], resend: number): unknown;
  /** The send settled: its response head, or `error`. */
  end(token: unknown, result: SendResult | undefined, error: unknown): void;
}

let hook: SendHook | undefined;

export function sendHook(): SendHook | undefined {
  return hook;
}

/** Installs (or with undefined removes) the hook; returns the one it replaced. */
export function setSendHook(h: SendHook | undefined): SendHook | undefined {
  const old = hook;
  hook = h;
  return old;
}

/**
 * Request-option member (symbol-keyed, so not an option users see): how many sends of the same
 * call came before this one. Set by the retry and redirect interceptors and by fetch().
 */
export const kResend: unique symbol = Symbol('uvfetch.resend');
