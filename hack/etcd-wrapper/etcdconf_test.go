package main

import "testing"

func TestParseEtcdConfig(t *testing.T) {
	text := `# written by backup-restore
advertise-client-urls: https://etcd-main-0.etcd-main-peer.default.svc:2379
client-transport-security:
    auto-tls: false
    cert-file: /var/etcd/ssl/server/tls.crt
    client-cert-auth: true
    key-file: '/var/etcd/ssl/server/tls.key'
    trusted-ca-file: "/var/etcd/ssl/ca/ca.crt"
data-dir: /var/etcd/data/new.etcd
initial-cluster: etcd-main-0=https://etcd-main-0.etcd-main-peer.default.svc:2380
listen-client-urls:
- https://0.0.0.0:2379
peer-transport-security:
    cert-file: /var/etcd/ssl/peer/server/tls.crt
    key-file: /var/etcd/ssl/peer/server/tls.key
    trusted-ca-file: /var/etcd/ssl/peer/ca/ca.crt
`
	conf, err := parseEtcdConfig([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := etcdConfig{
		dataDir:       "/var/etcd/data/new.etcd",
		certFile:      "/var/etcd/ssl/server/tls.crt",
		keyFile:       "/var/etcd/ssl/server/tls.key",
		trustedCAFile: "/var/etcd/ssl/ca/ca.crt",
	}
	if conf != want {
		t.Fatalf("got %+v, want %+v", conf, want)
	}
	if !conf.clientTLS() {
		t.Fatal("client TLS should be on")
	}
}

func TestParseEtcdConfigWithoutClientTLS(t *testing.T) {
	conf, err := parseEtcdConfig([]byte("name: etcd\ndata-dir: \"/tmp/d\"\npeer-transport-security:\n  cert-file: /p.crt\n  key-file: /p.key\n  trusted-ca-file: /ca.crt\n"))
	if err != nil {
		t.Fatal(err)
	}
	if conf.dataDir != "/tmp/d" || conf.clientTLS() {
		t.Fatalf("unexpected %+v", conf)
	}
}
