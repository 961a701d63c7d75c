// The public TLS types (pure: types only).

export type TlsVersion = 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export interface TlsVerifyOptions {
  /** Check the certificate's names against the host (or `servername`). Default true. */
  checkHostname?: boolean;
  /** Longest accepted chain (intermediates). Default OpenSSL's (100). */
  depth?: number;
  /** Accept a chain that ends at a trusted intermediate (X509_V_FLAG_PARTIAL_CHAIN). Default false. */
  partialChain?: boolean;
}

export interface TlsOptions {
  /** Lowest version offered. Default 'TLSv1.2'. */
  minVersion?: TlsVersion;
  /** Highest version offered. Default 'TLSv1.3'. */
  maxVersion?: TlsVersion;
  /** TLS ≤ 1.2 cipher list (OpenSSL names), offered in the order given. */
  ciphers?: string | readonly string[];
  /** TLS 1.3 cipher suites, offered in the order given. */
  ciphersuites?: string | readonly string[];
  /** Key-exchange groups (supported_groups), in the order given. E.g. ['X25519', 'P-256']. */
  groups?: string | readonly string[];
  /** node:tls's name for `groups` (':'-separated). Give one or the other. */
  ecdhCurve?: string;
  /** Signature algorithms offered (signature_algorithms), e.g. ['ecdsa_secp256r1_sha256', 'rsa_pss_rsae_sha256']. */
  sigalgs?: string | readonly string[];
  /** ALPN protocols in preference order. Default ['http/1.1']; [] sends no ALPN extension. */
  alpn?: readonly string[];
  /** Name sent as SNI and verified against the certificate, instead of the URL's host. */
  servername?: string;
  /** Send SNI (never sent for IP-literal hosts). Default true. */
  sni?: boolean;
  /** Offer session tickets (the session_ticket extension). Default true. */
  sessionTickets?: boolean;
  /** Origins whose last session is kept for resumption. Default 256; 0 disables resumption. */
  sessionCacheSize?: number;
  /** Verify the server's chain and name. Default true; false must be asked for. */
  rejectUnauthorized?: boolean;
  /** Trust anchors (PEM). Replaces the default store (Node's bundled roots plus NODE_EXTRA_CA_CERTS). */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Client certificate chain (PEM, leaf first). */
  cert?: string | Buffer;
  /** Client private key (PEM). */
  key?: string | Buffer;
  /** Passphrase of an encrypted `key`. */
  passphrase?: string;
  verify?: TlsVerifyOptions;
  // ---- ClientHello shaping (what browser profiles set; see README "Browser profiles") ----
  /** Two GREASE extensions (RFC 8701), first and last, as Chrome and Safari send. Default false. */
  grease?: boolean;
  /** Send status_request (ask for a stapled OCSP response, which is then ignored). Default false. */
  statusRequest?: boolean;
  /** Send signed_certificate_timestamp (SCTs are parsed, never enforced). Default false. */
  signedCertificateTimestamps?: boolean;
  /** Offer encrypt_then_mac (extension 22, OpenSSL's default). false: no extension 22, as browsers. */
  encryptThenMac?: boolean;
  /** OpenSSL's padding extension (21) when the hello is 256 to 511 bytes long. Default false. */
  padding?: boolean;
  /** Announce record_size_limit (RFC 8449), 64..16385; the server's own limit is honoured. */
  recordSizeLimit?: number;
  /** Send an encrypted_client_hello GREASE (no real ECH; a server's retry_configs are ignored). */
  echGrease?: boolean;
  /**
   * Certificate compression algorithms offered (compress_certificate), in order: 'brotli', 'zlib',
   * 'zstd'. Only those the running OpenSSL can decompress are sent (Node 24: brotli, zlib; Node
   * 20/22: none); [] sends none. Default: OpenSSL's own choice.
   */
  certCompression?: readonly ('brotli' | 'zlib' | 'zstd')[];
}

export interface TlsFingerprint {
  /** JA3 string: version,ciphers,extensions,groups,point formats (GREASE removed). */
  ja3: string;
  /** MD5 of `ja3`. */
  ja3Hash: string;
  /** JA4 (FoxIO) TLS client fingerprint. */
  ja4: string;
  /** JA4_r: JA4 with the sorted lists instead of their hashes. */
  ja4r: string;
}

export interface PeerCertificateSummary {
  subject: string;
  issuer: string;
  /** As node:tls spells it: "DNS:localhost, IP Address:127.0.0.1". */
  subjectaltname: string;
  validFrom: string;
  validTo: string;
  /** SHA-256 of the DER certificate, colon-separated uppercase hex. */
  fingerprint256: string;
  serialNumber: string;
}

/** What the connection's handshake negotiated (`res.tls`). Shared by every response of that connection. */
export interface TlsInfo {
  protocol: string;
  /** OpenSSL cipher name. */
  cipher: string;
  /** IANA cipher name. */
  cipherStandardName: string;
  /** Selected ALPN protocol, '' if none. */
  alpn: string;
  /** Key-exchange group, e.g. 'x25519'. */
  group: string;
  resumed: boolean;
  /** Chain and name verified (also reported when verification was not enforced). */
  authorized: boolean;
  authorizationError: string | undefined;
  /** SNI sent, '' if none. */
  servername: string;
  /** Fingerprint of the ClientHello this connection actually sent. */
  ja3: string;
  ja3Hash: string;
  ja4: string;
  peerCertificate: PeerCertificateSummary | null;
}
