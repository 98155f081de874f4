package server

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"moat/internal/api"
)

// The route table.
//
// Every handler the API serves is registered through a routeTable, which
// says who may call it: anyone (public), an agent (node: a node SVID), a
// server of the cluster (peer: a server SVID), or an administrator (admin:
// role, second factor and audit, see Server.admin). The table is the one
// registry of admin calls: AdminRoutes lists exactly what admin registered,
// and a pattern that could answer a path under /v1/admin/ is refused unless
// it comes through admin, so that no admin call can be served without the
// role, MFA and audit checks, nor be left out of the test that walks
// AdminRoutes. A refused registration is a programming error: it panics
// when the server builds its routes, before anything is served.

// adminPrefix is the path of every admin call.
const adminPrefix = "/v1/admin/"

// Caller kinds of a route.
const (
	routePublic = "public"
	routeNode   = "node"
	routePeer   = "peer"
	routeAdmin  = "admin"
)

// routeEntry is one registered pattern and the kind of caller it admits.
type routeEntry struct{ Method, Path, Kind string }

// adminHandler is an admin call's handler (see Server.admin).
type adminHandler func(context.Context, *caller, *http.Request) (any, string, error)

// routeTable builds the server's handler.
type routeTable struct {
	s       *Server
	mux     *http.ServeMux
	entries []routeEntry
	admins  []AdminRoute
}

func newRouteTable(s *Server) *routeTable {
	return &routeTable{s: s, mux: http.NewServeMux()}
}

// public registers a call anyone may make: the handler authenticates what
// it needs itself (a join token, an attestation), and holds the caller's
// address to its failures (failgate.go). Its request body must
// arrive within publicBodyTimeout: an anonymous HTTP/2 connection carries
// many calls at once, and none may hold a handler for as long as its
// client likes.
func (t *routeTable) public(method, path string, h http.HandlerFunc) {
	t.register(routePublic, method, path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(publicBodyTimeout))
		h(w, r)
	}))
}

// publicBodyTimeout bounds the time a public call's body (a join or a
// re-attestation: 16 KB at most) takes to arrive.
const publicBodyTimeout = 10 * time.Second

// node registers a call that only agents (node SVIDs) may make.
func (t *routeTable) node(method, path string, h func(http.ResponseWriter, *http.Request, *caller)) {
	t.register(routeNode, method, path, t.s.node(h))
}

// peer registers a call that only the cluster's servers may make.
func (t *routeTable) peer(method, path string, h func(http.ResponseWriter, *http.Request, *caller)) {
	t.register(routePeer, method, path, t.s.peer(h))
}

// admin registers an admin call: its least role, the action its audit
// entries and the MFA configuration name it by, and its handler.
func (t *routeTable) admin(method, path, role, action string, h adminHandler) {
	switch {
	case !strings.HasPrefix(path, adminPrefix):
		panic(fmt.Sprintf("server: admin call %s %s is not under %s", method, path, adminPrefix))
	case api.RoleRank(role) == 0:
		panic(fmt.Sprintf("server: admin call %s %s: least role %q is no role", method, path, role))
	case action == "":
		panic(fmt.Sprintf("server: admin call %s %s has no action", method, path))
	}
	for _, r := range t.admins {
		if r.Action == action {
			panic(fmt.Sprintf("server: admin calls %s %s and %s %s share the action %q", r.Method, r.Path, method, path, action))
		}
	}
	t.admins = append(t.admins, AdminRoute{method, path, role, action})
	t.register(routeAdmin, method, path, t.s.admin(role, action, h))
}

// register adds a pattern to the mux, after checking that only admin
// claims the admin paths.
func (t *routeTable) register(kind, method, path string, h http.Handler) {
	if method == "" || !strings.HasPrefix(path, "/v1/") || strings.ContainsAny(path, "{} ") || strings.HasSuffix(path, "/") {
		// Wildcards and subtrees could answer paths of calls registered
		// elsewhere; every call has a method and an exact path.
		panic(fmt.Sprintf("server: route %q %q: want a method and an exact path under /v1/", method, path))
	}
	if (kind == routeAdmin) != strings.HasPrefix(path, adminPrefix) {
		panic(fmt.Sprintf("server: %s route %s %s: the paths under %s are admin calls, and admin calls are there only", kind, method, path, adminPrefix))
	}
	t.entries = append(t.entries, routeEntry{method, path, kind})
	t.mux.Handle(method+" "+path, h)
}

// AdminRoute is one admin call: its method and path, the least role that
// may make it, and the action its audit entries name.
type AdminRoute struct{ Method, Path, Role, Action string }

// AdminRoutes lists every admin call the server answers: the route table's
// admin registrations, which are the only handlers under /v1/admin/. A
// test checks each one's authorization, calls added later included.
func (s *Server) AdminRoutes() []AdminRoute { return slices.Clone(s.table().admins) }

// table is the server's route table, built once.
func (s *Server) table() *routeTable {
	s.routesOnce.Do(func() { s.rt = s.buildRoutes() })
	return s.rt
}

func (s *Server) routes() http.Handler { return s.table().mux }

// buildRoutes registers every call the server answers.
func (s *Server) buildRoutes() *routeTable {
	t := newRouteTable(s)
	t.public("GET", api.PathBundle, s.handleBundle)
	t.public("GET", api.PathHealth, s.handleHealth)
	t.public("POST", api.PathJoin, s.handleJoin)
	t.node("POST", api.PathNodeRenew, s.handleRenew)
	t.public("POST", api.PathReattest, s.handleReattest)
	t.node("POST", api.PathSVID, s.handleSVID)
	t.node("GET", api.PathWatch, s.handleWatch)
	t.node("POST", api.PathFlows, s.handleFlows)
	t.peer("POST", api.PathPeerFlows, s.handlePeerFlows)
	t.peer("GET", api.PathPeerFollow, s.handlePeerFollow)
	t.peer("GET", api.PathPeerFlowBackup, s.handlePeerFlowBackup)
	t.node("GET", api.PathNodeAudit, s.handleNodeAudit)
	t.node("POST", api.PathNodeHealth, s.handleNodeHealth)
	t.node("POST", api.PathNodeCarried, s.handleCarried)

	admin := t.admin
	admin("GET", api.PathWhoami, api.RoleViewer, "whoami", s.handleWhoami)
	admin("POST", api.PathTokens, api.RoleOperator, "token.create", s.handleTokenCreate)
	admin("GET", api.PathServices, api.RoleViewer, "svc.list", s.handleServiceList)
	admin("POST", api.PathServices, api.RoleOperator, "svc.register", s.handleServiceRegister)
	admin("DELETE", api.PathServices, api.RoleOperator, "svc.deregister", s.handleServiceDeregister)
	admin("GET", api.PathNodes, api.RoleViewer, "node.list", s.handleNodeList)
	admin("GET", api.PathMembers, api.RoleViewer, "server.members", s.handleMembers)
	admin("POST", api.PathRevoke, api.RoleOperator, "revoke", s.handleRevoke)
	admin("GET", api.PathCA, api.RoleViewer, "ca.show", s.handleCAShow)
	admin("POST", api.PathCARotate, api.RoleAdmin, "ca.rotate", s.handleCARotate)
	admin("POST", api.PathAdmins, api.RoleAdmin, "admin.create", s.handleAdminCreate)
	admin("GET", api.PathAdmins, api.RoleAdmin, "admin.list", s.handleAdminList)
	admin("DELETE", api.PathAdmins, api.RoleAdmin, "admin.remove", s.handleAdminRemove)
	admin("POST", api.PathAdminRenew, api.RoleViewer, "admin.renew", s.handleAdminRenew)
	s.policyRoutes(t)
	s.auditRoutes(t)
	s.flowRoutes(t)
	s.dashboardRoutes(t)
	s.keyRoutes(t)
	s.mfaRoutes(t)
	s.accessRoutes(t)
	return t
}
