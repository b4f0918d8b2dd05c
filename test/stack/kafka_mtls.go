package stack

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// KafkaMTLS is a private broker (see NewKafka) with a second listener
// that speaks only TLS and requires a client certificate signed by its
// CA (ssl.client.auth=required), and the files a client needs.
type KafkaMTLS struct {
	*Kafka
	// TLSAddr is the listener that requires client certificates.
	TLSAddr string
	// CA verifies the broker's certificate.
	CA string
	// ClientCert and ClientKey are signed by the CA the broker trusts.
	ClientCert, ClientKey string
	// StrangerCert and StrangerKey are a client certificate signed by
	// another CA, which the broker must refuse.
	StrangerCert, StrangerKey string
}

// NewKafkaMTLS starts a private one-node broker whose TLS listener
// requires client certificates; it is killed when the test ends.
func NewKafkaMTLS(t testing.TB) *KafkaMTLS {
	t.Helper()
	dir := t.TempDir()

	ca, caKey := newCA(t, "cutover test Kafka CA")
	stranger, strangerKey := newCA(t, "a CA the broker does not trust")
	m := &KafkaMTLS{CA: filepath.Join(dir, "ca.pem")}
	writePEM(t, m.CA, "CERTIFICATE", ca.Raw)
	brokerKeystore := filepath.Join(dir, "broker-keystore.pem")
	keyDER, certDER := signed(t, ca, caKey, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	writePEM(t, brokerKeystore, "PRIVATE KEY", keyDER, "CERTIFICATE", certDER)
	m.ClientKey, m.ClientCert = filepath.Join(dir, "client-key.pem"), filepath.Join(dir, "client.pem")
	keyDER, certDER = signed(t, ca, caKey, "cutover", x509.ExtKeyUsageClientAuth)
	writePEM(t, m.ClientKey, "PRIVATE KEY", keyDER)
	writePEM(t, m.ClientCert, "CERTIFICATE", certDER)
	m.StrangerKey, m.StrangerCert = filepath.Join(dir, "stranger-key.pem"), filepath.Join(dir, "stranger.pem")
	keyDER, certDER = signed(t, stranger, strangerKey, "cutover", x509.ExtKeyUsageClientAuth)
	writePEM(t, m.StrangerKey, "PRIVATE KEY", keyDER)
	writePEM(t, m.StrangerCert, "CERTIFICATE", certDER)

	k := &Kafka{Addr: "127.0.0.1:" + strconv.Itoa(freePort(t)), dir: dir}
	m.Kafka, m.TLSAddr = k, "127.0.0.1:"+strconv.Itoa(freePort(t))
	k.launch(t, brokerListener{name: "SSL", addr: m.TLSAddr, props: []string{
		"listener.name.ssl.ssl.keystore.type=PEM",
		"listener.name.ssl.ssl.keystore.location=" + brokerKeystore,
		"listener.name.ssl.ssl.truststore.type=PEM",
		"listener.name.ssl.ssl.truststore.location=" + m.CA,
		"listener.name.ssl.ssl.client.auth=required",
	}})
	return m
}

// newCA makes a self-signed CA.
func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// signed makes a key (PKCS#8, as Kafka's PEM keystores want it) and a
// certificate for name signed by ca, for the given use.
func signed(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, use x509.ExtKeyUsage) (keyDER, certDER []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{use}, KeyUsage: x509.KeyUsageDigitalSignature}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	if certDER, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey); err != nil {
		t.Fatal(err)
	}
	if keyDER, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
		t.Fatal(err)
	}
	return keyDER, certDER
}

// writePEM writes PEM blocks, given as type, bytes, type, bytes…
func writePEM(t testing.TB, path string, blocks ...any) {
	t.Helper()
	var out []byte
	for i := 0; i < len(blocks); i += 2 {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: blocks[i].(string), Bytes: blocks[i+1].([]byte)})...)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}
