package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Initialisation states as backup-restore's /initialization/status spells them.
const (
	statusUnknown    = "Unknown"
	statusNew        = "New"
	statusInProgress = "InProgress"
	statusSuccessful = "Successful"
)

const brRequestTimeout = time.Minute

// brClient talks to the backup-restore sidecar's HTTP(S) server. Every call is a GET.
type brClient struct {
	base string
	http *http.Client
}

func newBackupRestoreClient(o options) (*brClient, error) {
	var problems []error
	if len(strings.Split(o.brHostPort, ":")) < 2 {
		problems = append(problems, errors.New("backup-restore-host-port must be <host>:<port>"))
	}
	if strings.HasPrefix(o.brHostPort, "http:") || strings.HasPrefix(o.brHostPort, "https:") {
		problems = append(problems, errors.New("backup-restore-host-port must not contain a scheme"))
	}
	if o.brTLSEnabled && strings.TrimSpace(o.brCABundlePath) == "" {
		problems = append(problems, errors.New("backup-restore-ca-cert-bundle-path is required when TLS is enabled"))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	transport := &http.Transport{} // no proxy from the environment: backup-restore is in the same pod
	scheme := "http"
	if o.brTLSEnabled {
		pool, err := loadCertPool(o.brCABundlePath)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: brHost(o.brHostPort), MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	return &brClient{
		base: scheme + "://" + o.brHostPort,
		http: &http.Client{Transport: transport, Timeout: brRequestTimeout},
	}, nil
}

// brHost is the host part of host:port, "localhost" when it is empty.
func brHost(hostPort string) string {
	if host := strings.TrimSpace(strings.Split(hostPort, ":")[0]); host != "" {
		return host
	}
	return "localhost"
}

func loadCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path) // #nosec G304 -- path comes from the operator's flags
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificates in %s", path)
	}
	return pool, nil
}

func (c *brClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated, http.StatusAccepted:
		return body, nil
	}
	return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
}

// initStatus maps the body to New or Successful, anything else to InProgress; Unknown on errors.
func (c *brClient) initStatus(ctx context.Context) (string, error) {
	body, err := c.get(ctx, "/initialization/status")
	if err != nil {
		return statusUnknown, err
	}
	switch s := strings.TrimSpace(string(body)); s {
	case statusNew, statusSuccessful:
		return s, nil
	}
	return statusInProgress, nil
}

func (c *brClient) startInit(ctx context.Context, mode string) error {
	_, err := c.get(ctx, "/initialization/start?mode="+mode)
	return err
}

func (c *brClient) config(ctx context.Context) ([]byte, error) {
	return c.get(ctx, "/config")
}
