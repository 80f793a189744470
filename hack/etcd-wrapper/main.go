// Command etcd-wrapper is a stand-in for gardener/etcd-wrapper (contract of v0.6.2): it asks the
// backup-restore sidecar to initialise etcd's data directory, fetches etcd's configuration from it,
// runs etcd and serves a readiness endpoint. Unlike upstream it runs etcd as a child process instead
// of embedding it; see README.md for every difference.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

const commandName = "start-etcd"

// options are the command-line flags of start-etcd.
type options struct {
	brHostPort       string
	brTLSEnabled     bool
	brCABundlePath   string
	etcdServerName   string
	etcdClientPort   int
	etcdClientCert   string
	etcdClientKey    string
	wrapperPort      int
	etcdReadyTimeout time.Duration
	// Not in upstream: the etcd binary to run, and where the exit code of the last stop is kept.
	etcdBinary   string
	exitCodeFile string
}

func (o *options) register(fs *flag.FlagSet) {
	fs.IntVar(&o.wrapperPort, "etcd-wrapper-port", 9095, "port of the wrapper's own HTTP(S) server (/readyz, /stop)")
	fs.BoolVar(&o.brTLSEnabled, "backup-restore-tls-enabled", false, "talk to backup-restore over HTTPS")
	fs.StringVar(&o.brHostPort, "backup-restore-host-port", ":8080", "backup-restore's <host>:<port>, without a scheme")
	fs.StringVar(&o.brCABundlePath, "backup-restore-ca-cert-bundle-path", "", "CA bundle that verifies backup-restore's certificate (TLS only)")
	fs.StringVar(&o.etcdServerName, "etcd-server-name", "", "host name used to reach etcd for the readiness check; also the TLS server name")
	fs.IntVar(&o.etcdClientPort, "etcd-client-port", 2379, "etcd's client port")
	fs.StringVar(&o.etcdClientCert, "etcd-client-cert-path", "", "client certificate for etcd (when etcd's client TLS is on)")
	fs.StringVar(&o.etcdClientKey, "etcd-client-key-path", "", "client key for etcd (when etcd's client TLS is on)")
	fs.DurationVar(&o.etcdReadyTimeout, "etcd-ready-timeout", 0, "log an error when etcd is not ready this long after it was started (0: no limit)")
	fs.StringVar(&o.etcdBinary, "etcd-binary", "/usr/local/bin/etcd", "etcd executable to run (stand-in only)")
	fs.StringVar(&o.exitCodeFile, "exit-code-file", defaultExitCodeFile, "file recording the signal that stopped the last run (stand-in only)")
}

const defaultExitCodeFile = "/var/etcd/data/exit_code"

const help = `etcd-wrapper (druid stand-in for gardener/etcd-wrapper)

Usage:
  etcd-wrapper start-etcd [flags]
  etcd-wrapper --version

start-etcd waits until the backup-restore sidecar has initialised etcd's data directory, fetches
etcd's configuration from it into $HOME/etcd.conf.yaml, runs etcd with that configuration and
serves GET /readyz and POST /stop on --etcd-wrapper-port.

Flags of start-etcd:
`

func usage(w io.Writer) {
	fmt.Fprint(w, help)
	fs := flag.NewFlagSet(commandName, flag.ContinueOnError)
	fs.SetOutput(w)
	(&options{}).register(fs)
	fs.PrintDefaults()
}

func main() {
	// The etcd child is started from this goroutine with a parent-death signal, which the kernel ties
	// to the thread that forked it: keep that thread for the life of the process.
	runtime.LockOSThread()

	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
		fmt.Printf("etcd-wrapper %s\n", version)
		return
	}
	if len(args) < 1 || args[0] != commandName {
		usage(os.Stderr)
		os.Exit(1)
	}

	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	var opts options
	fs := flag.NewFlagSet(commandName, flag.ExitOnError) // like upstream: an unknown flag ends the program
	opts.register(fs)
	_ = fs.Parse(args[1:])
	var shown []string
	fs.VisitAll(func(f *flag.Flag) { shown = append(shown, fmt.Sprintf("%s: %s", f.Name, f.Value)) })
	log.Info("etcd-wrapper starting", "version", version, "flags", strings.Join(shown, ", "))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	w := &wrapper{opts: opts, log: log, ctx: ctx, stop: stop}
	w.handleSignals()
	if err := w.run(); err != nil {
		if errors.Is(err, errStopped) {
			log.Info("etcd-wrapper stopped")
			return
		}
		log.Error("etcd-wrapper failed", "error", err)
		os.Exit(1)
	}
	log.Info("etcd-wrapper stopped")
}
