package main

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// etcdConfig holds the few settings of etcd's YAML configuration the wrapper itself needs; etcd
// reads the whole file.
type etcdConfig struct {
	dataDir string
	// client-transport-security
	certFile      string
	keyFile       string
	trustedCAFile string
}

// clientTLS says whether etcd serves clients over TLS, by the same rule as upstream: server
// certificate, key and trusted CA are all configured.
func (c etcdConfig) clientTLS() bool {
	return c.certFile != "" && c.keyFile != "" && c.trustedCAFile != ""
}

// parseEtcdConfig reads data-dir and client-transport-security.{cert-file,key-file,trusted-ca-file}
// from etcd's configuration. It understands the block-style YAML that backup-restore's /config
// handler writes (scalars at the top level, one level of nested mappings); it is not a YAML parser.
func parseEtcdConfig(text []byte) (etcdConfig, error) {
	var (
		conf    etcdConfig
		section string // the top-level key whose nested mapping is being read
	)
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || trimmed == "---" {
			continue
		}
		indented := line[0] == ' ' || line[0] == '\t'
		if strings.HasPrefix(trimmed, "- ") || trimmed == "-" {
			continue // list items: nothing the wrapper needs lives in a list
		}
		key, raw, ok := strings.Cut(trimmed, ":")
		if !ok {
			if indented {
				continue // continuation of a multi-line scalar
			}
			return etcdConfig{}, fmt.Errorf("line %d: not a key: value line: %q", n, trimmed)
		}
		key = strings.TrimSpace(key)
		value, err := scalar(strings.TrimSpace(raw))
		if err != nil {
			return etcdConfig{}, fmt.Errorf("line %d (%s): %w", n, key, err)
		}
		if !indented {
			section = ""
			switch key {
			case "data-dir":
				conf.dataDir = value
			case "client-transport-security":
				if value == "" {
					section = key
				}
			}
			continue
		}
		if section == "client-transport-security" {
			switch key {
			case "cert-file":
				conf.certFile = value
			case "key-file":
				conf.keyFile = value
			case "trusted-ca-file":
				conf.trustedCAFile = value
			}
		}
	}
	if err := sc.Err(); err != nil {
		return etcdConfig{}, err
	}
	return conf, nil
}

// scalar unquotes a YAML scalar; null, ~ and an empty flow mapping read as "".
func scalar(v string) (string, error) {
	switch {
	case v == "" || v == "~" || v == "null" || v == "{}":
		return "", nil
	case strings.HasPrefix(v, `"`):
		return strconv.Unquote(v)
	case strings.HasPrefix(v, "'"):
		if len(v) < 2 || !strings.HasSuffix(v, "'") {
			return "", fmt.Errorf("unterminated quoted value %s", v)
		}
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'"), nil
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, nil
}
