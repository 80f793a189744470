// Command coredns is CoreDNS with only the plugins the local node's cluster DNS needs.
//
// Upstream's binary links every plugin listed in plugin.cfg (core/plugin/zplugin.go). This one links
// only bind, ready, health, errors, log, cache and kubernetes: a Corefile for the local node uses
// nothing else (no forward: there is no outside DNS to forward to).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives are the linked plugins in the order upstream's plugin.cfg gives them
// (core/dnsserver/zdirectives.go): a plugin sees the effects of every plugin after it. metadata,
// prometheus and transfer are not imported here but come with kubernetes; listing them lets a
// Corefile use them (e.g. "prometheus :9153").
var directives = []string{
	"metadata",
	"bind",
	"ready",
	"health",
	"prometheus",
	"errors",
	"log",
	"cache",
	"transfer",
	"kubernetes",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
