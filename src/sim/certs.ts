/**
 * The simulated API server's TLS material: a CA and a server certificate
 * (SAN IP 127.0.0.1, DNS localhost) signed by it, both ECDSA P-256 / SHA-256,
 * the combination Go's crypto/x509 (kubectl) and OpenSSL (Node) both accept.
 *
 * Generated once per process and shared by every simulated cluster: tests
 * start many clusters, and a restarted API server must keep its CA anyway.
 * A cluster that stands for another real cluster (several contexts in one
 * kubeconfig) gets a CA of its own from freshSimCerts().
 */
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import * as der from './der.js';

export interface SimCerts {
  /** PEM of the CA certificate: what a kubeconfig's certificate-authority-data holds. */
  caPem: string;
  /** PEM of the server certificate, signed by the CA. */
  certPem: string;
  /** PKCS#8 PEM of the server's private key. */
  keyPem: string;
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** RFC 5280 §4.2.1.3 bit positions. */
const KEY_USAGE = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

const DAY_MS = 24 * 60 * 60 * 1000;

let cached: Promise<SimCerts> | undefined;

/** The process-wide CA and server certificate, generated on first use. */
export function simCerts(): Promise<SimCerts> {
  cached ??= Promise.resolve().then(generateSimCerts);
  return cached;
}

/** A CA and server certificate of their own (not the process-wide pair). */
export function freshSimCerts(): SimCerts {
  return generateSimCerts();
}

function generateSimCerts(): SimCerts {
  const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const server = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // Backdated an hour so a client clock slightly behind still accepts it.
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = new Date(Date.now() + 365 * DAY_MS);
  const caName = name('kubesocks-sim-ca');
  const caKeyId = keyIdentifier(ca.publicKey);

  const caDer = certificate({
    subject: caName,
    issuer: caName,
    notBefore,
    notAfter,
    publicKey: ca.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      extension(OID.basicConstraints, true, der.sequence(der.boolean(true))),
      extension(OID.keyUsage, true, der.namedBits([KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign])),
      extension(OID.subjectKeyIdentifier, false, der.octetString(caKeyId)),
    ],
  });

  const serverDer = certificate({
    subject: name('kube-apiserver'),
    issuer: caName,
    notBefore,
    notAfter,
    publicKey: server.publicKey,
    signingKey: ca.privateKey,
    extensions: [
      extension(OID.basicConstraints, true, der.sequence()),
      extension(OID.keyUsage, true, der.namedBits([KEY_USAGE.digitalSignature, KEY_USAGE.keyEncipherment])),
      extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth))),
      extension(
        OID.subjectAltName,
        false,
        // GeneralName: [2] dNSName IA5String, [7] iPAddress OCTET STRING (RFC 5280 §4.2.1.6).
        der.sequence(der.implicitPrimitive(2, Buffer.from('localhost', 'ascii')), der.implicitPrimitive(7, Buffer.from([127, 0, 0, 1]))),
      ),
      extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier(server.publicKey))),
      extension(OID.authorityKeyIdentifier, false, der.sequence(der.implicitPrimitive(0, caKeyId))),
    ],
  });

  const certs: SimCerts = {
    caPem: toPem(caDer, 'CERTIFICATE'),
    certPem: toPem(serverDer, 'CERTIFICATE'),
    keyPem: server.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
  // Parse once so an encoding mistake fails here, not inside a TLS handshake.
  const parsed = new X509Certificate(certs.certPem);
  if (!parsed.verify(new X509Certificate(certs.caPem).publicKey)) {
    throw new Error('simulated cluster: generated server certificate does not verify against its CA');
  }
  return certs;
}

interface CertificateFields {
  subject: Buffer;
  issuer: Buffer;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  signingKey: KeyObject;
  extensions: Buffer[];
}

/** RFC 5280 §4.1: Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }. */
function certificate(fields: CertificateFields): Buffer {
  const algorithm = der.sequence(der.oid(OID.ecdsaWithSha256));
  const serial = randomBytes(16);
  // Positive and minimally encoded: clear the top bit, never start with zero.
  serial[0] = ((serial[0] ?? 1) & 0x7f) || 1;
  const tbs = der.sequence(
    der.explicit(0, der.smallInteger(2)), // v3
    der.unsignedInteger(serial),
    algorithm,
    fields.issuer,
    der.sequence(der.time(fields.notBefore), der.time(fields.notAfter)),
    fields.subject,
    fields.publicKey.export({ type: 'spki', format: 'der' }),
    der.explicit(3, der.sequence(...fields.extensions)),
  );
  const signature = sign('sha256', tbs, { key: fields.signingKey, dsaEncoding: 'der' });
  return der.sequence(tbs, algorithm, der.bitStringBytes(signature));
}

function name(commonName: string): Buffer {
  const attribute = (type: string, value: string) => der.set(der.sequence(der.oid(type), der.utf8String(value)));
  return der.sequence(attribute(OID.organization, 'kubesocks'), attribute(OID.commonName, commonName));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  // `critical` is DEFAULT FALSE: DER omits a default value.
  return critical ? der.sequence(der.oid(id), der.boolean(true), der.octetString(value)) : der.sequence(der.oid(id), der.octetString(value));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
function keyIdentifier(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x ?? '', 'base64url');
  const y = Buffer.from(jwk.y ?? '', 'base64url');
  const point = Buffer.concat([Buffer.from([0x04]), x, y]); // uncompressed EC point
  return createHash('sha1').update(point).digest();
}

function toPem(body: Buffer, label: string): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
