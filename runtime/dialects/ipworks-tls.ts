/**
 * TLS for the IPWorks facade: turns the canonical TLS settings (normalized from IPWorks names such as
 * SSLCertStore, SSLCertStoreType, SSLEnabledProtocols, SSLEnabledCipherSuites, TLS13SupportedGroups)
 * into Node's tls.createServer options, reads IPWorks's numeric vocabularies (store types, the
 * protocol bit mask), reads the cipher suites and signature algorithms a client offers from its
 * ClientHello (for the SSLConnectionRequest event), and decides, from SSLSecurityFlags, whether a
 * client certificate that failed verification is still recommended for acceptance.
 */
import { X509Certificate, constants as cryptoConstants, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TlsOptions } from 'node:tls';
import type { CanonicalServerSettings } from './engine.js';

export class TlsSettingError extends Error {
  constructor(
    /** The IPWorks name of the setting at fault. */
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
    this.name = 'TlsSettingError';
  }
}

// ------------------------------------------------------------------ IPWorks vocabularies

/** IPWorks certificate store types (the numbers of its API) and wirestate's names for those Node can read. */
export const CertStoreTypes = {
  cstUser: 0,
  cstMachine: 1,
  cstPFXFile: 2,
  cstPFXBlob: 3,
  cstJKSFile: 4,
  cstJKSBlob: 5,
  cstPEMKeyFile: 6,
  cstPEMKeyBlob: 7,
  cstPublicKeyFile: 8,
  cstPublicKeyBlob: 9,
  cstSSHPublicKeyBlob: 10,
  cstP7BFile: 11,
  cstP7BBlob: 12,
  cstSSHPublicKeyFile: 13,
  cstPPKFile: 14,
  cstPPKBlob: 15,
  cstXMLFile: 16,
  cstXMLBlob: 17,
  cstJWKFile: 18,
  cstJWKBlob: 19,
  cstBCFKSFile: 21,
  cstBCFKSBlob: 22,
  cstPKCS11: 23,
  cstAuto: 99,
} as const;

export type StoreTypeName = 'auto' | 'pemKeyFile' | 'pemKeyBlob' | 'pfxFile' | 'pfxBlob';
const STORE_TYPE_BY_NUMBER: Record<number, StoreTypeName> = { 2: 'pfxFile', 3: 'pfxBlob', 6: 'pemKeyFile', 7: 'pemKeyBlob', 99: 'auto' };
const NUMBER_BY_STORE_TYPE: Record<StoreTypeName, number> = { pfxFile: 2, pfxBlob: 3, pemKeyFile: 6, pemKeyBlob: 7, auto: 99 };

/** An IPWorks store type (number, cst… constant name, or wirestate name) → wirestate's name. */
export function storeTypeName(value: unknown): StoreTypeName | unknown {
  if (typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value.trim()))) {
    const n = Number(value);
    const name = STORE_TYPE_BY_NUMBER[n];
    if (!name) {
      const constant = Object.entries(CertStoreTypes).find(([, v]) => v === n)?.[0] ?? String(n);
      throw new TlsSettingError('SSLCertStoreType', `${constant} (${n}) cannot be honoured on Node: Node reads certificates only from PEM and PKCS#12 (PFX) files or blobs, not from Windows, Java or other stores`);
    }
    return name;
  }
  if (typeof value === 'string' && value in CertStoreTypes) return storeTypeName(CertStoreTypes[value as keyof typeof CertStoreTypes]);
  return value;
}

export function storeTypeNumber(name: string | undefined): number {
  return NUMBER_BY_STORE_TYPE[(name ?? 'auto') as StoreTypeName] ?? 99;
}

/** IPWorks SSLEnabledProtocols bits. */
const PROTOCOL_BITS: [number, string][] = [
  [12, 'SSLv2'],
  [48, 'SSLv3'],
  [192, 'TLSv1'],
  [768, 'TLSv1.1'],
  [3072, 'TLSv1.2'],
  [12288, 'TLSv1.3'],
];
const NODE_VERSIONS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;

/** SSLEnabledProtocols as IPWorks writes it (a bit mask) or as a list of names → a list of names. */
export function protocolsFromIpworks(value: unknown): unknown {
  if (typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value.trim()))) {
    const mask = Number(value);
    return PROTOCOL_BITS.filter(([bits]) => (mask & bits) !== 0).map(([, name]) => name);
  }
  if (typeof value === 'string') return value.split(/[,\s]+/).filter(Boolean);
  return value;
}

export function protocolsToIpworks(list: readonly string[] | undefined): number {
  let mask = 0;
  for (const name of list ?? []) mask |= PROTOCOL_BITS.find(([, n]) => n.toLowerCase() === name.toLowerCase())?.[0] ?? 0;
  return mask;
}

// ------------------------------------------------------------------ cipher suites

/** IANA names of TLS 1.2 suites → OpenSSL names (TLS 1.3 suites keep their IANA names in OpenSSL). */
const IANA_TO_OPENSSL: Record<string, string> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_DHE_RSA_WITH_AES_128_GCM_SHA256: 'DHE-RSA-AES128-GCM-SHA256',
  TLS_DHE_RSA_WITH_AES_256_GCM_SHA384: 'DHE-RSA-AES256-GCM-SHA384',
  TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'DHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384: 'ECDHE-ECDSA-AES256-SHA384',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384: 'ECDHE-RSA-AES256-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_DHE_RSA_WITH_AES_128_CBC_SHA256: 'DHE-RSA-AES128-SHA256',
  TLS_DHE_RSA_WITH_AES_256_CBC_SHA256: 'DHE-RSA-AES256-SHA256',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_RSA_WITH_AES_256_CBC_SHA256: 'AES256-SHA256',
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
};
const TLS13_SUITES = new Set(['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_CCM_SHA256', 'TLS_AES_128_CCM_8_SHA256']);

/** Cipher suite code points (RFC 8446 B.4, IANA registry) → IANA names, for reporting a ClientHello. */
const SUITE_NAMES: Record<number, string> = {
  0x1301: 'TLS_AES_128_GCM_SHA256',
  0x1302: 'TLS_AES_256_GCM_SHA384',
  0x1303: 'TLS_CHACHA20_POLY1305_SHA256',
  0x1304: 'TLS_AES_128_CCM_SHA256',
  0x1305: 'TLS_AES_128_CCM_8_SHA256',
  0xc02b: 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  0xc02f: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  0xc02c: 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  0xc030: 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  0xcca9: 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  0xcca8: 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  0xccaa: 'TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
  0x009e: 'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256',
  0x009f: 'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384',
  0xc023: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
  0xc027: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256',
  0xc024: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384',
  0xc028: 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384',
  0xc009: 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA',
  0xc013: 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA',
  0xc00a: 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA',
  0xc014: 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA',
  0x0067: 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA256',
  0x006b: 'TLS_DHE_RSA_WITH_AES_256_CBC_SHA256',
  0x009c: 'TLS_RSA_WITH_AES_128_GCM_SHA256',
  0x009d: 'TLS_RSA_WITH_AES_256_GCM_SHA384',
  0x003c: 'TLS_RSA_WITH_AES_128_CBC_SHA256',
  0x003d: 'TLS_RSA_WITH_AES_256_CBC_SHA256',
  0x002f: 'TLS_RSA_WITH_AES_128_CBC_SHA',
  0x0035: 'TLS_RSA_WITH_AES_256_CBC_SHA',
  0x00ff: 'TLS_EMPTY_RENEGOTIATION_INFO_SCSV',
};

/** Signature scheme code points (RFC 8446 section 4.2.3) → names. */
const SIGNATURE_NAMES: Record<number, string> = {
  0x0401: 'rsa_pkcs1_sha256',
  0x0501: 'rsa_pkcs1_sha384',
  0x0601: 'rsa_pkcs1_sha512',
  0x0403: 'ecdsa_secp256r1_sha256',
  0x0503: 'ecdsa_secp384r1_sha384',
  0x0603: 'ecdsa_secp521r1_sha512',
  0x0804: 'rsa_pss_rsae_sha256',
  0x0805: 'rsa_pss_rsae_sha384',
  0x0806: 'rsa_pss_rsae_sha512',
  0x0807: 'ed25519',
  0x0808: 'ed448',
  0x0809: 'rsa_pss_pss_sha256',
  0x080a: 'rsa_pss_pss_sha384',
  0x080b: 'rsa_pss_pss_sha512',
  0x0201: 'rsa_pkcs1_sha1',
  0x0203: 'ecdsa_sha1',
  0x0301: 'rsa_pkcs1_sha224',
  0x0303: 'ecdsa_sha224',
};

const hex = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;

/** Translates IANA suite names to one OpenSSL cipher string; throws naming the first unknown suite. */
export function cipherSuitesToOpenSsl(suites: readonly string[]): string | undefined {
  const names = suites.map((s) => s.trim()).filter(Boolean);
  if (names.length === 0 || names.includes('*')) return undefined;
  return names
    .map((name) => {
      const upper = name.toUpperCase();
      if (TLS13_SUITES.has(upper)) return upper;
      const openssl = IANA_TO_OPENSSL[upper];
      if (openssl) return openssl;
      if (/^[A-Z0-9]+(-[A-Z0-9]+)+$/.test(upper) && Object.values(IANA_TO_OPENSSL).includes(upper)) return upper;
      throw new TlsSettingError('SSLEnabledCipherSuites', `unknown cipher suite "${name}" (give IANA names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_AES_128_GCM_SHA256)`);
    })
    .join(':');
}

/** What a ClientHello offers: its cipher suites and signature algorithms (empty when it cannot be read). */
export function parseClientHello(data: Buffer): { cipherSuites: string[]; signatureAlgorithms: string[]; serverName: string | undefined } {
  const out = { cipherSuites: [] as string[], signatureAlgorithms: [] as string[], serverName: undefined as string | undefined };
  try {
    // TLS record: type 22 (handshake), version, length; handshake: type 1 (client_hello), length (RFC 8446 section 4.1.2).
    if (data[0] !== 0x16 || data[5] !== 0x01) return out;
    let at = 9 + 2 + 32; // handshake header, legacy_version, random
    const sessionLength = data[at]!;
    at += 1 + sessionLength;
    const suitesLength = data.readUInt16BE(at);
    at += 2;
    for (let i = 0; i + 1 < suitesLength && at + i + 1 < data.length; i += 2) {
      const code = data.readUInt16BE(at + i);
      if ((code & 0x0f0f) === 0x0a0a) continue; // GREASE (RFC 8701)
      out.cipherSuites.push(SUITE_NAMES[code] ?? hex(code));
    }
    at += suitesLength;
    at += 1 + data[at]!; // compression methods
    const extensionsEnd = Math.min(data.length, at + 2 + data.readUInt16BE(at));
    at += 2;
    while (at + 4 <= extensionsEnd) {
      const type = data.readUInt16BE(at);
      const length = data.readUInt16BE(at + 2);
      const body = at + 4;
      if (type === 13 && body + 2 <= extensionsEnd) {
        const listLength = data.readUInt16BE(body);
        for (let i = 0; i + 1 < listLength && body + 2 + i + 1 < extensionsEnd; i += 2) {
          const code = data.readUInt16BE(body + 2 + i);
          if ((code & 0x0f0f) === 0x0a0a) continue;
          out.signatureAlgorithms.push(SIGNATURE_NAMES[code] ?? hex(code));
        }
      } else if (type === 0 && body + 5 <= extensionsEnd && data[body + 2] === 0) {
        const nameLength = data.readUInt16BE(body + 3);
        out.serverName = data.subarray(body + 5, body + 5 + nameLength).toString('ascii');
      }
      at = body + length;
    }
  } catch {
    // A truncated or odd ClientHello: report what was read; the TLS handshake itself decides.
  }
  return out;
}

// ------------------------------------------------------------------ certificates

export interface CertificateChoice {
  store?: string | undefined;
  storeType?: string | undefined;
  password?: string | undefined;
  subject?: string | undefined;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

function looksLikePath(store: string): boolean {
  return !store.includes('-----BEGIN') && store.length < 4096 && existsSync(store);
}

/** Reads a certificate store as IPWorks describes it: a file or a blob, PEM (certificate + key) or PFX. */
function readStore(choice: CertificateChoice): Pick<TlsOptions, 'cert' | 'key' | 'pfx' | 'passphrase'> {
  const store = choice.store!;
  let type = (choice.storeType ?? 'auto') as StoreTypeName;
  let data: Buffer;
  if (type === 'pemKeyFile' || type === 'pfxFile' || (type === 'auto' && looksLikePath(store))) {
    try {
      data = readFileSync(store);
    } catch (error) {
      throw new TlsSettingError('SSLCertStore', `cannot read "${store}": ${(error as Error).message}`);
    }
  } else {
    data = store.includes('-----BEGIN') ? Buffer.from(store) : Buffer.from(store, 'base64');
  }
  if (type === 'auto' || type === 'pemKeyFile' || type === 'pemKeyBlob') {
    const text = data.toString('latin1');
    if (text.includes('-----BEGIN')) type = 'pemKeyBlob';
    else if (type === 'auto') type = 'pfxBlob';
    else throw new TlsSettingError('SSLCertStore', 'no PEM data found');
  }
  if (type === 'pfxFile' || type === 'pfxBlob') return { pfx: data, passphrase: choice.password };
  const blocks = data.toString('latin1').match(PEM_BLOCK) ?? [];
  const certs = blocks.filter((b) => b.startsWith('-----BEGIN CERTIFICATE'));
  const keys = blocks.filter((b) => /-----BEGIN (?:[A-Z]+ )?(?:ENCRYPTED )?PRIVATE KEY-----/.test(b));
  if (certs.length === 0) {
    // A store holding only the key: the certificate comes from SSLCertEncoded.
    if (keys.length === 0) throw new TlsSettingError('SSLCertStore', 'the PEM data holds neither a certificate nor a private key');
    return { key: keys[0], passphrase: choice.password };
  }
  let chosen = certs;
  const subject = choice.subject?.trim();
  if (subject && subject !== '*') {
    const index = certs.findIndex((pem) => subjectMatches(new X509Certificate(pem).subject, subject));
    if (index === -1) throw new TlsSettingError('SSLCertSubject', `no certificate in the store matches "${subject}"`);
    chosen = [certs[index]!, ...certs.filter((_, i) => i !== index)];
  }
  return { cert: chosen.join('\n'), key: matchingKey(chosen[0]!, keys, choice.password), passphrase: choice.password };
}

/** The private key (of several in one store) that belongs to the certificate. */
function matchingKey(certificate: string, keys: string[], passphrase: string | undefined): string | undefined {
  if (keys.length <= 1) return keys[0];
  const x509 = new X509Certificate(certificate);
  return (
    keys.find((pem) => {
      let key: KeyObject;
      try {
        key = createPrivateKey({ key: pem, passphrase });
      } catch {
        return false;
      }
      return x509.checkPrivateKey(key);
    }) ?? keys[0]
  );
}

/**
 * IPWorks subject matching: "CN=name" style parts, each of which must appear in the certificate's
 * subject (case-insensitive); a bare value matches the common name. `*` wildcards are allowed.
 */
export function subjectMatches(certificateSubject: string, wanted: string): boolean {
  const fields = certificateSubject.split('\n').map((line) => line.trim().toLowerCase());
  const parts = wanted.split(/,\s*/).map((p) => p.trim().toLowerCase()).filter(Boolean);
  return parts.every((part) => {
    const [key, ...rest] = part.includes('=') ? part.split('=') : ['cn', part];
    const value = rest.join('=');
    const pattern = new RegExp(`^${value.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    return fields.some((field) => {
      const [k, ...v] = field.split('=');
      return k === key && pattern.test(v.join('='));
    });
  });
}

function readCaFiles(settings: CanonicalServerSettings): (string | Buffer)[] {
  const out: (string | Buffer)[] = [];
  const ca = settings.tlsCa as string | Buffer | (string | Buffer)[] | undefined;
  if (ca !== undefined) out.push(...(Array.isArray(ca) ? ca : [ca]));
  const read = (file: string, setting: string) => {
    try {
      out.push(readFileSync(file));
    } catch (error) {
      throw new TlsSettingError(setting, `cannot read "${file}": ${(error as Error).message}`);
    }
  };
  if (settings.tlsCaFile) read(settings.tlsCaFile as string, 'OpenSSLCAFile');
  for (const file of (settings.tlsCaFilePaths as string[] | undefined) ?? []) read(file, 'SSLCACertFilePaths');
  const dir = settings.tlsCaDir as string | undefined;
  if (dir) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch (error) {
      throw new TlsSettingError('OpenSSLCADir', `cannot read "${dir}": ${(error as Error).message}`);
    }
    for (const entry of entries.sort()) {
      const file = path.join(dir, entry);
      if (statSync(file).isFile() && /\.(pem|crt|cer|\d+)$/i.test(entry)) read(file, 'OpenSSLCADir');
    }
  }
  return out;
}

/** Node's TLS server options from the canonical settings; `choice` overrides the certificate (SSLConnectionRequest). */
export function tlsServerOptions(settings: CanonicalServerSettings, choice?: CertificateChoice): TlsOptions {
  const selection = (typeof settings.tlsCertSelection === 'object' && settings.tlsCertSelection !== null ? settings.tlsCertSelection : {}) as {
    store?: string;
    storeType?: string;
    storePassword?: string;
    subject?: string;
    encoded?: string | Buffer;
  };
  const certificate: CertificateChoice = {
    store: choice?.store ?? selection.store ?? (settings.tlsCertStore as string | undefined),
    storeType: choice?.storeType ?? selection.storeType ?? (settings.tlsCertStoreType as string | undefined),
    password: choice?.password ?? selection.storePassword ?? (settings.tlsPassphrase as string | undefined),
    subject: choice?.subject ?? selection.subject ?? (settings.tlsCertSubject as string | undefined),
  };
  const options: TlsOptions = {};
  if (certificate.store) Object.assign(options, readStore(certificate));
  const encoded = selection.encoded ?? (settings.tlsCert as string | Buffer | undefined);
  if (encoded !== undefined && !choice?.store) options.cert = encoded;
  if (settings.tlsKey !== undefined && options.key === undefined) options.key = settings.tlsKey as string | Buffer;
  if (settings.tlsPfx !== undefined && options.pfx === undefined) options.pfx = settings.tlsPfx as Buffer;
  if (!options.pfx && !(options.cert && options.key)) {
    throw new TlsSettingError('SSLCertStore', 'UseSSL needs a certificate and its private key: set SSLCertStore (a PEM file with both, or a PFX) and SSLCertStoreType');
  }
  const ca = readCaFiles(settings);
  if (ca.length > 0) options.ca = ca;
  options.requestCert = settings.tlsRequestClientCert === true;
  // The SSLClientAuthentication event decides (its Accept parameter), not OpenSSL.
  options.rejectUnauthorized = false;
  const suites = cipherSuitesToOpenSsl((settings.tlsCipherSuites as string[] | undefined) ?? []);
  if (suites) options.ciphers = suites;
  else if (settings.tlsCipherList) options.ciphers = settings.tlsCipherList as string;
  Object.assign(options, versionRange((settings.tlsProtocols as string[] | undefined) ?? ['TLSv1.2', 'TLSv1.3']));
  const sigalgs = [...((settings.tls12SignatureAlgorithms as string[] | undefined) ?? []), ...((settings.tls13SignatureAlgorithms as string[] | undefined) ?? [])];
  if (sigalgs.length > 0) options.sigalgs = [...new Set(sigalgs)].join(':');
  const groups = [...((settings.tls12SupportedGroups as string[] | undefined) ?? []), ...((settings.tls13SupportedGroups as string[] | undefined) ?? [])];
  if (groups.length > 0) options.ecdhCurve = [...new Set(groups)].join(':');
  let secureOptions = 0;
  if (settings.tlsRenegotiation !== true) secureOptions |= cryptoConstants.SSL_OP_NO_RENEGOTIATION;
  if (settings.tlsSessionReuse === false) {
    secureOptions |= cryptoConstants.SSL_OP_NO_TICKET;
    options.sessionTimeout = 0;
  }
  if (secureOptions) options.secureOptions = secureOptions;
  options.handshakeTimeout = (settings.tlsHandshakeTimeout as number | undefined) ?? 10000;
  return options;
}

/** SSLEnabledProtocols → Node's minVersion / maxVersion (Node takes a range, so the span of the set is used). */
export function versionRange(protocols: readonly string[]): Pick<TlsOptions, 'minVersion' | 'maxVersion'> {
  const wanted = protocols.map((p) => p.trim()).filter(Boolean);
  const obsolete = wanted.find((p) => /^ssl/i.test(p));
  if (obsolete) throw new TlsSettingError('SSLEnabledProtocols', `${obsolete} cannot be enabled: Node's OpenSSL no longer implements SSL 2 or 3 (RFC 7568)`);
  const indexes = wanted.map((p) => {
    const normal = p.toLowerCase().replace(/^tls\s*v?/, 'tlsv').replace(/^tlsv1\.0$/, 'tlsv1');
    const index = NODE_VERSIONS.findIndex((v) => v.toLowerCase() === normal);
    if (index === -1) throw new TlsSettingError('SSLEnabledProtocols', `unknown protocol "${p}" (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)`);
    return index;
  });
  if (indexes.length === 0) throw new TlsSettingError('SSLEnabledProtocols', 'no protocol enabled');
  return { minVersion: NODE_VERSIONS[Math.min(...indexes)], maxVersion: NODE_VERSIONS[Math.max(...indexes)] };
}

// ------------------------------------------------------------------ client certificates

/** SSLSecurityFlags bits and the OpenSSL verification errors each tolerates. */
const SECURITY_FLAGS: [number, string[]][] = [
  // 0x00000001: ignore time validity.
  [0x1, ['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']],
  // 0x00000004: ignore non-nested certificate times.
  [0x4, ['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']],
  // 0x00000010: allow an unknown certificate authority.
  [0x10, ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE']],
  // 0x00000020: ignore wrong certificate usage.
  [0x20, ['INVALID_PURPOSE']],
];

/** Whether a client certificate that failed with `error` is still acceptable under `flags`. */
export function toleratedBy(flags: number, error: string | undefined): boolean {
  if (!error) return true;
  return SECURITY_FLAGS.some(([bit, errors]) => (flags & bit) !== 0 && errors.includes(error));
}

/** DER → PEM. */
export function toPem(raw: Buffer): string {
  const body = raw.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

/** An X.509 name object (tls.getPeerCertificate) as IPWorks prints subjects: "CN=client, O=Example". */
export function formatName(name: Record<string, string | string[]> | undefined): string {
  if (!name) return '';
  return Object.entries(name)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join('+') : value}`)
    .join(', ');
}
