package check

import (
	"strings"

	"gopkg.in/yaml.v3"

	"moat/internal/server"
)

// RuleStoreUnauthenticated reports a control plane whose etcd takes it
// without a client certificate, or in plaintext across the network: etcd
// then takes anyone who reaches its port, and whoever does can delete the
// control plane's state or put back older values (sealing keeps them from
// reading or forging it, not from that).
const RuleStoreUnauthenticated = "MOAT-010"

func storeAuthRules() []Rule {
	return []Rule{
		{RuleStoreUnauthenticated, High, "Control-plane store reachable without a client certificate",
			"The server reaches its etcd cluster in plaintext to an address that is not loopback (moat refuses to run with it), or over TLS without a client certificate (store.tls.cert_file and key_file unset), which etcd accepts only when it authenticates no client. Whoever reaches etcd's port can then delete the control plane's registry, policy, revocations and audit log, or put back older values: a revoked node's certificates accepted again, a removed intention restored. Values are sealed, so they cannot be read or forged, but rollback and deletion are not prevented. Plaintext is reported at high, TLS without a client certificate at medium.",
			"Run etcd with --client-cert-auth and --trusted-ca-file, give the servers store.tls (ca_file, cert_file, key_file) and an etcd user limited to the prefix, and admit etcd's port from the servers alone."},
	}
}

// checkStoreAuth adds a finding when f's etcd store is reached without a
// client certificate. f has passed ValidateFile, which leaves plaintext
// endpoints to this rule (the server refuses them).
func checkStoreAuth(doc *yaml.Node, f *server.File, addSev func(sev Severity, rule string, line int, addr, format string, args ...any)) {
	if f.Store.Backend != "etcd" {
		return
	}
	plain := f.Store.PlaintextEndpoints()
	switch {
	case len(plain) > 0:
		addSev(High, RuleStoreUnauthenticated, lineOf(doc, "store", "endpoints"), "server.store.endpoints",
			"etcd is reached in plaintext at %s, across the network (moat refuses to run with it): anyone on the path or at etcd's port can delete or roll back the control plane's state", strings.Join(plain, ", "))
	case allLoopback(f.Store.Endpoints):
		// One host's own etcd: its port is this machine's alone.
	case f.Store.TLS == nil || f.Store.TLS.CertFile == "":
		line := lineOf(doc, "store", "tls")
		if f.Store.TLS == nil {
			line = lineOf(doc, "store")
		}
		addSev(Medium, RuleStoreUnauthenticated, line, "server.store.tls",
			"the server presents no client certificate to etcd, so etcd authenticates no client: whoever reaches its port can delete or roll back the control plane's state")
	}
}

// allLoopback reports whether every endpoint is on a loopback address.
func allLoopback(endpoints []string) bool {
	for _, e := range endpoints {
		if !server.LoopbackEndpoint(e) {
			return false
		}
	}
	return true
}
