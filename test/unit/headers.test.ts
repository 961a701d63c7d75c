// Header handling (lib/core/headers.ts): request headers as users give them, method names, and the
// lazily parsed response headers. Pure: no sockets.
import { describe, expect, it } from 'vitest';
import { UvfetchError } from '../../lib/core/errors.js';
import { findHeader, flattenHeaders, headerPairs, normalizeMethod, ResponseHeaders, statusTextOf } from '../../lib/core/headers.js';

describe('request headers', () => {
  it('an object: one pair per value, arrays repeated, undefined skipped, values stringified, order kept', () => {
    const h = { 'X-A': 'a', 'set-thing': ['1', '2'], skip: undefined, n: 42 };
    expect(flattenHeaders(h, [])).toEqual(['X-A', 'a', 'set-thing', '1', 'set-thing', '2', 'n', '42']);
    expect(headerPairs(h)).toEqual([
      ['X-A', 'a'],
      ['set-thing', '1'],
      ['set-thing', '2'],
      ['n', '42'],
    ]);
  });

  it('an iterable of pairs (a Map, an array) keeps duplicates and order', () => {
    const m = new Map([
      ['b', '2'],
      ['a', '1'],
    ]);
    expect(flattenHeaders(m, [])).toEqual(['b', '2', 'a', '1']);
    expect(
      headerPairs([
        ['x', '1'],
        ['x', '2'],
      ]),
    ).toEqual([
      ['x', '1'],
      ['x', '2'],
    ]);
  });

  it('flattenHeaders appends to what is there', () => {
    expect(flattenHeaders({ b: '2' }, ['a', '1'])).toEqual(['a', '1', 'b', '2']);
  });

  it('headerPairs of nothing is empty', () => {
    expect(headerPairs(undefined)).toEqual([]);
    expect(headerPairs(null)).toEqual([]);
  });

  it.each([[[['only-name']]], [[['a', 'b', 'c']]], ['a string'], [42]])('rejects %j with ERR_INVALID_OPTION (headers)', (bad) => {
    try {
      flattenHeaders(bad as never, []);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UvfetchError);
      expect((e as UvfetchError).code).toBe('ERR_INVALID_OPTION');
      expect((e as UvfetchError).reason).toBe('headers');
    }
  });

  it('findHeader is case-insensitive on names and returns the first value', () => {
    const flat = ['Content-Length', '5', 'content-length', '6'];
    expect(findHeader(flat, 'content-length')).toBe('5');
    expect(findHeader(flat, 'authorization')).toBeUndefined();
  });
});

describe('normalizeMethod', () => {
  it('upper-cases the standard methods only', () => {
    expect(['get', 'Head', 'post', 'put', 'delete', 'options', 'patch'].map(normalizeMethod)).toEqual([
      'GET',
      'HEAD',
      'POST',
      'PUT',
      'DELETE',
      'OPTIONS',
      'PATCH',
    ]);
    expect(normalizeMethod('purge')).toBe('purge');
    expect(normalizeMethod('MKCOL')).toBe('MKCOL');
  });
});

describe('ResponseHeaders', () => {
  const head = 'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nX-Multi: one\r\nset-cookie: b=2\r\nx-multi:  two \r\n\r\n';
  const h = new ResponseHeaders(head);

  it('get() is case-insensitive and joins repeats with ", "', () => {
    expect(h.get('content-type')).toBe('text/plain');
    expect(h.get('X-MULTI')).toBe('one, two');
    expect(h.get('missing')).toBeNull();
    expect(h.has('Content-Type')).toBe(true);
    expect(h.has('nope')).toBe(false);
  });

  it('getSetCookie() keeps each value apart', () => {
    expect(h.getSetCookie()).toEqual(['a=1', 'b=2']);
  });

  it('raw(), rawPairs(), entries() and iteration', () => {
    expect(h.raw()['x-multi']).toEqual(['one', 'two']);
    expect(h.rawPairs().slice(0, 4)).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1']);
    expect([...h].length).toBe(5);
    expect([...h.keys()]).toEqual(['content-type', 'set-cookie', 'x-multi', 'set-cookie', 'x-multi']);
    const seen: string[] = [];
    h.forEach((v, n) => seen.push(`${n}=${v}`));
    expect(seen[0]).toBe('content-type=text/plain');
    expect(h.rawHead).toBe(head);
  });

  it('statusTextOf reads the reason phrase', () => {
    expect(statusTextOf(head)).toBe('Not Found');
    expect(statusTextOf('HTTP/1.1 200\r\n\r\n')).toBe('');
    expect(statusTextOf('HTTP/1.0 204 No Content')).toBe('No Content');
  });
});
