package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/litcache/litcache/stages/bundle"
)

// Run opens the bundle and serves it on cfg.Addr until ctx ends, then shuts
// down gracefully: the listener closes, requests in flight get their
// answers (for up to ShutdownTimeout), and Run returns nil.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Bundle == "" {
		return fmt.Errorf("serve: no bundle (--bundle)")
	}
	b, err := bundle.Open(cfg.Bundle, cfg.Backend)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer b.Close()
	info := Info{Bundle: cfg.Bundle, Tower: b.Meta.Tower, Fingerprint: b.Meta.Fingerprint}
	return RunWith(ctx, cfg, b, info)
}

// RunWith is Run over any classifier.
func RunWith(ctx context.Context, cfg Config, clf Classifier, info Info) error {
	s, err := New(cfg, clf, info)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("serve: --addr: %w", err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// A phone on a slow network uploads 20 MiB in well under two minutes.
		ReadTimeout:    2 * time.Minute,
		WriteTimeout:   cfg.Timeout + 2*time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	addr := ln.Addr().String()
	s.logf("serve: %d classes on http://%s/ (%s); %d decoders, %d queued, batches of %d",
		len(clf.Classes()), addr, RouteList(), cfg.workers(), cfg.Queue, cfg.batch())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.Ready != nil {
		cfg.Ready(addr)
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.logf("serve: shutting down: %d request(s) in flight", s.metrics.inFlight.Load())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	s.logf("serve: stopped")
	return nil
}
