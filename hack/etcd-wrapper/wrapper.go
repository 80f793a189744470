package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	initPollInterval   = time.Second
	configAttempts     = 5
	configRetryBackoff = time.Second
	readyCheckInterval = 2 * time.Second
	readyCheckTimeout  = 5 * time.Second
	etcdStopGrace      = time.Minute
	readHeaderTimeout  = 5 * time.Second
)

// errStopped says a signal or POST /stop ended the wrapper before etcd ran.
var errStopped = errors.New("stopped before etcd was started")

type wrapper struct {
	opts options
	log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc

	// mu orders the signal handler's write of the exit code file against its removal once etcd is ready.
	mu        sync.Mutex
	signalled bool
	started   bool

	ready atomic.Bool
}

// handleSignals records the first SIGTERM/SIGINT in the exit code file (as Go names the signal:
// "terminated", "interrupt") and stops the wrapper; a second signal exits at once.
func (w *wrapper) handleSignals() {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	go func() {
		sig := <-ch
		w.mu.Lock()
		w.signalled = true
		if err := os.WriteFile(w.opts.exitCodeFile, []byte(sig.String()), 0o600); err != nil {
			w.log.Error("failed to record exit code", "path", w.opts.exitCodeFile, "error", err)
		}
		w.mu.Unlock()
		w.log.Info("caught shutdown signal", "signal", sig.String())
		w.stop()
		<-ch
		os.Exit(1)
	}()
}

func (w *wrapper) run() error {
	br, err := newBackupRestoreClient(w.opts)
	if err != nil {
		return err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return err
	}
	confPath := filepath.Join(home, "etcd.conf.yaml")

	if err := w.initialise(br); err != nil {
		return err
	}
	body, err := w.fetchConfig(br, confPath)
	if err != nil {
		return err
	}
	conf, err := parseEtcdConfig(body)
	if err != nil {
		return fmt.Errorf("etcd configuration from backup-restore: %w", err)
	}
	w.log.Info("fetched and wrote etcd configuration", "path", confPath, "dataDir", conf.dataDir,
		"clientTLS", conf.clientTLS())

	// Everything etcd creates from now on is private to its user; what an older run left is made so too.
	syscall.Umask(0o077)
	if err := chmodFiles(conf.dataDir, 0o600); err != nil {
		return fmt.Errorf("failed to change file permissions: %w", err)
	}

	probe, err := newProbe(w.opts, conf)
	if err != nil {
		return err
	}
	srv, err := w.serve(conf)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Close() }()
	go w.checkReadiness(probe)

	cmd := exec.Command(w.opts.etcdBinary, "--config-file", confPath) // #nosec G204 -- operator-chosen binary
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// If the wrapper dies without stopping etcd (SIGKILL), the kernel kills etcd too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	w.log.Info("etcd started", "pid", cmd.Process.Pid, "binary", w.opts.etcdBinary)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if t := w.opts.etcdReadyTimeout; t > 0 {
		timer := time.AfterFunc(t, func() {
			if !w.ready.Load() {
				w.log.Error("etcd is not ready yet", "timeout", t.String())
			}
		})
		defer timer.Stop()
	}

	select {
	case <-w.ctx.Done():
		w.ready.Store(false)
		w.stopEtcd(cmd, exited)
		return nil
	case err := <-exited:
		w.ready.Store(false)
		w.stop()
		return fmt.Errorf("etcd exited: %v", err)
	}
}

// initialise polls backup-restore's initialisation status every second, triggers the initialisation
// when it is New and returns once it is Successful.
func (w *wrapper) initialise(br *brClient) error {
	for {
		status, err := br.initStatus(w.ctx)
		if err != nil {
			w.log.Error("error while fetching initialization status", "error", err)
		} else {
			w.log.Info("fetched initialization status", "status", status)
		}
		switch status {
		case statusSuccessful:
			w.log.Info("etcd initialization succeeded")
			return nil
		case statusNew:
			mode := w.validationMode()
			w.log.Info("triggering etcd initialization", "mode", mode)
			if err := br.startInit(w.ctx, mode); err != nil {
				w.log.Error("error while triggering initialization", "error", err)
			}
		}
		select {
		case <-w.ctx.Done():
			return errStopped
		case <-time.After(initPollInterval):
		}
	}
}

// validationMode is "sanity" when the last run was stopped by a signal (the exit code file says
// terminated or interrupt), else "full". It also drops the legacy validation_marker file.
func (w *wrapper) validationMode() string {
	marker := filepath.Join(filepath.Dir(w.opts.exitCodeFile), "validation_marker")
	if err := os.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.log.Error("error removing validation_marker file", "path", marker, "error", err)
	}
	data, err := os.ReadFile(w.opts.exitCodeFile)
	if err == nil {
		switch strings.TrimSpace(string(data)) {
		case "terminated", "interrupt":
			return "sanity"
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		w.log.Error("error reading exit code file, assuming full validation", "path", w.opts.exitCodeFile, "error", err)
	}
	return "full"
}

func (w *wrapper) fetchConfig(br *brClient, path string) ([]byte, error) {
	var err error
	for attempt := 1; ; attempt++ {
		var body []byte
		if body, err = br.config(w.ctx); err == nil {
			if err = os.WriteFile(path, body, 0o600); err == nil {
				if err = os.Chmod(path, 0o600); err == nil {
					return body, nil
				}
			}
		}
		if attempt == configAttempts {
			return nil, fmt.Errorf("fetching etcd configuration: all %d attempts failed: %w", configAttempts, err)
		}
		w.log.Info("re-attempting to fetch etcd configuration", "attempt", attempt, "error", err)
		select {
		case <-w.ctx.Done():
			return nil, errStopped
		case <-time.After(configRetryBackoff):
		}
	}
}

// serve starts the wrapper's endpoints: HTTPS with etcd's own server certificate when etcd's client
// TLS is on, plain HTTP otherwise.
func (w *wrapper) serve(conf etcdConfig) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(rw http.ResponseWriter, _ *http.Request) {
		if w.ready.Load() {
			rw.WriteHeader(http.StatusOK)
			return
		}
		rw.WriteHeader(http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/stop", func(rw http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			return // upstream ignores other methods (and answers 200)
		}
		w.log.Info("received stop request, stopping etcd")
		w.stop()
		rw.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          slog.NewLogLogger(w.log.Handler(), slog.LevelWarn),
	}
	useTLS := conf.clientTLS()
	if useTLS {
		cert, err := tls.LoadX509KeyPair(conf.certFile, conf.keyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd server certificate for the wrapper's HTTPS server: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", w.opts.wrapperPort))
	if err != nil {
		return nil, err
	}
	w.log.Info("serving /readyz and /stop", "port", w.opts.wrapperPort, "tls", useTLS)
	go func() {
		var err error
		if useTLS {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			w.log.Error("wrapper server failed", "error", err)
			w.stop()
		}
	}()
	return srv, nil
}

// checkReadiness reads a key from etcd now and every 2 s; /readyz reports the last result.
func (w *wrapper) checkReadiness(p *probe) {
	ticker := time.NewTicker(readyCheckInterval)
	defer ticker.Stop()
	for {
		ctx, cancel := context.WithTimeout(w.ctx, readyCheckTimeout)
		err := p.check(ctx)
		cancel()
		if w.ctx.Err() != nil {
			return
		}
		if err == nil {
			if !w.ready.Swap(true) {
				w.log.Info("etcd is ready")
				w.etcdStarted()
			}
		} else if w.ready.Swap(false) || !w.everStarted() {
			w.log.Error("etcd is not ready", "error", err)
		}
		select {
		case <-w.ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (w *wrapper) everStarted() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started
}

// etcdStarted forgets how the last run ended, once etcd serves, unless this run is already being
// stopped by a signal.
func (w *wrapper) etcdStarted() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started || w.signalled {
		return
	}
	w.started = true
	if err := os.Remove(w.opts.exitCodeFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.log.Warn("failed to clean up the last exit code", "path", w.opts.exitCodeFile, "error", err)
	}
}

// stopEtcd sends SIGTERM to etcd and waits for it to exit (SIGKILL after a minute).
func (w *wrapper) stopEtcd(cmd *exec.Cmd, exited <-chan error) {
	w.log.Info("stopping etcd", "pid", cmd.Process.Pid)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		w.log.Error("failed to signal etcd", "error", err)
	}
	select {
	case err := <-exited:
		w.log.Info("etcd stopped", "status", fmt.Sprint(err))
	case <-time.After(etcdStopGrace):
		w.log.Error("etcd did not stop in time, killing it", "grace", etcdStopGrace.String())
		_ = cmd.Process.Kill()
		<-exited
	}
}

// chmodFiles sets mode on every regular file under dir (a missing dir is fine).
func chmodFiles(dir string, mode os.FileMode) error {
	if dir == "" {
		return nil
	}
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return os.Chmod(path, mode)
	})
}
