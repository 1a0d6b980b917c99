package source

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/scimsync/scimsync/engine/secret"
	"github.com/scimsync/scimsync/engine/source/ldaptest"
)

// TestStartTLS gives a private slapd a certificate (through cn=config over
// ldapi) and connects with StartTLS: with the CA file, without it (refused),
// and with insecure.
func TestStartTLS(t *testing.T) {
	srv := ldaptest.StartOpenLDAP(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)

	admin, err := ldap.DialURL(srv.LDAPI)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.ExternalBind(); err != nil {
		t.Fatal(err)
	}
	m := ldap.NewModifyRequest("cn=config", nil)
	m.Replace("olcTLSCertificateFile", []string{certFile})
	m.Replace("olcTLSCertificateKeyFile", []string{keyFile})
	if err := admin.Modify(m); err != nil {
		t.Fatalf("configuring TLS: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := srv.Source("changelog")
	cfg.StartTLS = true
	cfg.CAFile = certFile
	d, err := newDialer(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := d.dial(ctx, 0)
	if err != nil {
		t.Fatalf("StartTLS with the CA file: %v", err)
	}
	if st, ok := c.TLSConnectionState(); !ok || !st.HandshakeComplete {
		t.Error("no TLS after StartTLS")
	}
	c.Close()

	cfg.CAFile = ""
	d, _ = newDialer(cfg, Options{})
	if _, _, err := d.dial(ctx, 0); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("StartTLS without the CA: %v", err)
	}
	cfg.Insecure = true
	d, _ = newDialer(cfg, Options{})
	c, _, err = d.dial(ctx, 0)
	if err != nil {
		t.Fatalf("StartTLS insecure: %v", err)
	}
	c.Close()
}

func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFailoverAndAuth: a dead first server is passed over; a wrong password
// is ErrAuth at once, without retrying, and the error does not show it.
func TestFailoverAndAuth(t *testing.T) {
	srv := ldaptest.OpenLDAP(t)
	cfg := srv.Source("syncrepl")
	cfg.URLs = append([]string{"ldap://127.0.0.1:1"}, cfg.URLs...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	src, err := Open(ctx, cfg, "", Options{})
	if err != nil {
		t.Fatalf("failover to the second url: %v", err)
	}
	src.Close()

	cfg.Password = secret.New("wrong-Pa55word")
	_, err = Open(ctx, cfg, "", Options{})
	if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "wrong-Pa55word") {
		t.Fatalf("wrong password: %v", err)
	}
}
