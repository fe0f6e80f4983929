// Package pki is distchat's cluster public key infrastructure: the
// certificates that let every rmi connection run over TLS 1.3.
//
//   - The central server keeps a cluster certificate authority, [CA]
//     (ca.crt, and ca.key with mode 0600, beside the cluster secret),
//     created on first run. It certifies itself for its own host names and
//     IPs ([CA.CentralCert]) and signs the chat servers' certificate
//     requests ([CA.Issue]); the central package serves that to chat
//     servers that prove the cluster secret.
//   - A chat server is a [Member]: it keeps its key, its certificate and
//     the cluster CA in its data directory, asks central for a certificate
//     (for its advertised host names and IPs) when it registers and again
//     before it expires, serves with it, and presents it as a client
//     certificate to other chat servers (mutual TLS). Until it has learned
//     the CA, on its very first contact with central, it accepts central's
//     certificate unverified: the cluster secret, proved in the rmi
//     handshake and bound to the TLS session, authenticates central then.
//   - A client verifies servers with a [ClientTrust]: against a CA file
//     given by the user, or by trust on first use, as SSH does: the CA's
//     fingerprint is shown and pinned per central address in a
//     known-centrals file, and a different CA later is refused.
//
// Keys are ECDSA P-256. Everything here uses only crypto/tls and
// crypto/x509; time comes from an injected clock.
package pki
