package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
)

// probe reads key "foo" from etcd like upstream's readiness check (a linearizable clientv3 Get): one
// unary gRPC call, etcdserverpb.KV/Range, spoken over the standard library's HTTP/2 client (h2c
// without TLS). etcd's JSON gateway is not used: druid's configuration turns it off by default.
type probe struct {
	client *http.Client
	url    string
}

const probeKey = "foo"

func newProbe(o options, conf etcdConfig) (*probe, error) {
	host := o.etcdServerName
	if host == "" {
		host = "127.0.0.1"
	}
	transport := &http.Transport{}
	protocols := new(http.Protocols)
	scheme := "http"
	if conf.clientTLS() {
		pool, err := loadCertPool(conf.trustedCAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd trusted CA: %w", err)
		}
		cert, err := tls.LoadX509KeyPair(o.etcdClientCert, o.etcdClientKey)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		transport.TLSClientConfig = &tls.Config{
			RootCAs:      pool,
			ServerName:   o.etcdServerName,
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
		}
		protocols.SetHTTP2(true)
		scheme = "https"
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	transport.Protocols = protocols
	return &probe{
		client: &http.Client{Transport: transport},
		url:    scheme + "://" + net.JoinHostPort(host, strconv.Itoa(o.etcdClientPort)) + "/etcdserverpb.KV/Range",
	}, nil
}

// rangeRequest is the protobuf encoding of etcdserverpb.RangeRequest{Key: key, Limit: 1}.
func rangeRequest(key string) []byte {
	msg := []byte{0x0a} // field 1 (key), length-delimited
	msg = binary.AppendUvarint(msg, uint64(len(key)))
	msg = append(msg, key...)
	return append(msg, 0x18, 0x01) // field 3 (limit), varint 1
}

// grpcFrame prefixes msg with gRPC's message header: not compressed, 4-byte big-endian length.
func grpcFrame(msg []byte) []byte {
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg))) // #nosec G115 -- a few bytes
	return append(frame, msg...)
}

func (p *probe) check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(grpcFrame(rangeRequest(probeKey))))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body) // the trailers arrive after the body
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("range request: HTTP %s", resp.Status)
	}
	status, message := resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	if status == "" { // not a trailers-only response
		status, message = resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	}
	if status != "0" {
		return fmt.Errorf("range request: gRPC status %q: %s", status, message)
	}
	if len(body) < 5 {
		return fmt.Errorf("range request: short gRPC response (%d bytes)", len(body))
	}
	return nil
}
