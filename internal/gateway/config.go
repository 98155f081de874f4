package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"moat/internal/config"
	"moat/internal/waf"
)

// File is gateway.yaml as written. Every field is optional unless its
// comment says otherwise; the zero value of each names its default.
type File struct {
	// Listen is the HTTPS address; empty means ":8443".
	Listen string `yaml:"listen"`
	// RedirectListen is the plain-HTTP address that answers only with a
	// redirect to HTTPS; empty means ":8080", "off" turns it off.
	RedirectListen string `yaml:"redirect_listen"`
	// RedirectPort is the HTTPS port named in redirects; 0 means Listen's.
	RedirectPort int `yaml:"redirect_port"`

	TLS     TLSFile     `yaml:"tls"`
	HSTS    HSTSFile    `yaml:"hsts"`
	Limits  LimitsFile  `yaml:"limits"`
	WAF     WAFFile     `yaml:"waf"`
	CSRF    CSRFFile    `yaml:"csrf"`
	Rate    RateFile    `yaml:"rate_limit"`
	Events  string      `yaml:"events"` // OCSF JSON-lines file for security events; empty: the caller's writer only
	IPAllow []string    `yaml:"ip_allow"`
	IPDeny  []string    `yaml:"ip_deny"`
	Trusted []string    `yaml:"trusted_proxies"`
	Routes  []RouteFile `yaml:"routes"`
	// Services are the mesh services routes may name, when the caller
	// does not supply the list.
	Services []string `yaml:"services"`
}

// TLSFile names the certificate. Without cert_file and key_file the
// caller must supply certificates (Config.GetCertificate).
type TLSFile struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MinVersion is "1.2" (the default) or "1.3".
	MinVersion string `yaml:"min_version"`
}

// HSTSFile sets Strict-Transport-Security, on by default with a max-age of
// one year.
type HSTSFile struct {
	Disabled          bool            `yaml:"disabled"`
	MaxAge            config.Duration `yaml:"max_age"`
	IncludeSubdomains bool            `yaml:"include_subdomains"`
	Preload           bool            `yaml:"preload"`
}

// LimitsFile holds the slowloris and size defences.
type LimitsFile struct {
	ReadHeaderTimeout config.Duration `yaml:"read_header_timeout"` // 0: 5s
	ReadTimeout       config.Duration `yaml:"read_timeout"`        // 0: 60s (whole request, body included)
	WriteTimeout      config.Duration `yaml:"write_timeout"`       // 0: 120s
	IdleTimeout       config.Duration `yaml:"idle_timeout"`        // 0: 60s
	MaxHeaderBytes    int             `yaml:"max_header_bytes"`    // 0: 32 KiB
	// MaxBodyBytes is the largest request body on a route that sets no
	// max_body_bytes of its own; 0 means 1 MiB (nginx's default), enough
	// for forms and API calls. Routes that take uploads raise their own.
	MaxBodyBytes  int64 `yaml:"max_body_bytes"`
	MaxConnsPerIP int   `yaml:"max_conns_per_ip"` // 0: 256; an IPv6 /64 counts as one IP; the HTTPS and redirect ports count apart
	// MaxRateClients is how many (route, client) rate-limit buckets are
	// kept; 0 means 131072 (about 27 MiB). Past it the least recently
	// seen client is forgotten, so a spray of source addresses bounds
	// memory without refusing newcomers; raise it when more clients than
	// that are active within a refill of the burst. A reload keeps the
	// buckets (the most recently seen, when this shrinks), refilled and
	// capped by each route's limits as the new file sets them.
	MaxRateClients int `yaml:"max_rate_clients"`
	// WebSocketIdleTimeout closes an open WebSocket on which no byte
	// moved either way for that long, on routes that set none of their
	// own; 0 means 5m. At least a second. A reload applies it to
	// WebSockets opened from then on.
	WebSocketIdleTimeout config.Duration `yaml:"websocket_idle_timeout"`
}

// WAFFile configures the WAF (see waf.Config for each setting's meaning).
type WAFFile struct {
	Disabled          bool `yaml:"disabled"`
	Paranoia          int  `yaml:"paranoia"`
	DetectionParanoia int  `yaml:"detection_paranoia"`
	InboundThreshold  int  `yaml:"inbound_threshold"`
	OutboundThreshold int  `yaml:"outbound_threshold"`
	DetectionOnly     bool `yaml:"detection_only"`
	// FullEvaluation runs every detection rule on a request whose block
	// is already certain, so that its event lists every rule that
	// matched: for tuning false positives. The verdict is the same
	// either way; by default the evaluation stops once the anomaly
	// score reaches the threshold and cannot be taken back.
	FullEvaluation    bool     `yaml:"full_evaluation"`
	RequestBodyLimit  int64    `yaml:"request_body_limit"`
	ResponseBodyLimit int64    `yaml:"response_body_limit"`
	InspectResponses  bool     `yaml:"inspect_responses"`
	RulesBefore       []string `yaml:"rules_before"`
	Rules             []string `yaml:"rules"`
	// The WAF's per-request bounds (see waf.Config): the longest argument
	// value, argument name and all arguments together, in bytes; the
	// most arguments from one source; the CPU time phase 2 may take. A
	// request past any of them is refused. 0 means waf's default.
	MaxArgLength      int             `yaml:"max_arg_length"`
	MaxArgNameLength  int             `yaml:"max_arg_name_length"`
	MaxTotalArgLength int             `yaml:"max_total_arg_length"`
	MaxArgs           int             `yaml:"max_args"`
	Budget            config.Duration `yaml:"budget"`
	// BodyInspection bounds the WAF's work on request bodies across
	// requests.
	BodyInspection BodyInspectionFile `yaml:"body_inspection"`
}

// BodyInspectionFile bounds how much request body the WAF evaluates at
// once. Its cost grows with the body, so without a bound a few clients
// posting large bodies take the CPU from every other request. A body
// waits for room in a queue served round-robin across clients (an IPv4
// address or IPv6 /64 each); a client over its share is answered 429 at
// once, a body that finds no room within queue_timeout 503. Requests
// without a body are not queued. A reload that leaves max_bytes,
// max_bytes_per_client, queue_timeout and max_queued as they were keeps
// the gate and what it holds; one that changes them starts a new gate
// (the bodies in the old one finish there).
type BodyInspectionFile struct {
	// MaxBytes is the request-body bytes under evaluation at once; 0 means
	// 8 MiB. A larger body takes the whole of it.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxBytesPerClient is what one client may have under evaluation or
	// waiting; 0 means a quarter of max_bytes. A client with nothing in
	// flight is always queued, whatever its body's size.
	MaxBytesPerClient int64 `yaml:"max_bytes_per_client"`
	// QueueTimeout is how long a body waits for room; 0 means 5s.
	QueueTimeout config.Duration `yaml:"queue_timeout"`
	// MaxQueued is how many bodies may wait for room at once, all clients
	// together; 0 means max_bytes / 4 KiB (2048 for 8 MiB). Past it a body
	// that finds no room is answered 503 at once; a client with a body
	// already waiting finds the queue full at half of it, so that a few
	// clients cannot fill it. A waiting body is held in memory: the bound
	// keeps many clients (a botnet, an IPv6 prefix's /64s) from queueing
	// without end.
	MaxQueued int `yaml:"max_queued"`
	// MaxBodies is how many request bodies the gateway holds for the WAF
	// at once, all clients together, each from its request's headers to
	// the request's end; 0 means 2048. The WAF keeps each in a buffer, up to
	// 128 KiB of it in memory and the rest in a temporary file, and
	// forwards it from there, so this bounds that memory (2048 × 160 KiB,
	// the buffer and a read's copy buffer: 320 MiB; see docs/WAF.md).
	// Past it a body is answered 503 at once; a client that holds a body
	// is answered 429 for another once half of it is taken. Bodies waiting
	// in the queue are among those held.
	MaxBodies int `yaml:"max_bodies"`
}

// CSRFFile sets what happens to an unsafe request with neither Origin nor
// Referer: "refuse_with_cookies" (the default: refuse when it carries
// cookies), "refuse" or "allow".
type CSRFFile struct {
	Missing string `yaml:"missing"`
}

// RateFile is a token bucket per client IP (an IPv6 /64 counts as one).
type RateFile struct {
	RPS   float64 `yaml:"rps"`   // 0: 50 requests a second
	Burst int     `yaml:"burst"` // 0: 2×RPS, at least 1
	Off   bool    `yaml:"off"`
}

// RouteFile maps Host + path prefix to a mesh service.
type RouteFile struct {
	Name string `yaml:"name"` // defaults to the service name
	// Host is matched without port, case-insensitively, and without the
	// trailing dot of a fully qualified name; empty or "*" matches any host.
	Host string `yaml:"host"`
	// Path is a path prefix ("/api/"); empty means "/". It is matched
	// against the request's path in normal form (escapes of unreserved
	// characters decoded, "//" merged, "." and ".." resolved), which is
	// also what the WAF inspects and the service receives. A request whose
	// path as sent, without its segments' ";" parameters, without their
	// trailing dots and surrounding whitespace (as IIS and older Spring
	// read them) or with letter case ignored would pick another route than
	// its normal form is refused (400).
	Path    string `yaml:"path"`
	Service string `yaml:"service"` // required
	Port    int    `yaml:"port"`    // required
	// AllowedOrigins are the origins ("https://shop.example") whose
	// unsafe requests are accepted. Empty: only the request's own origin
	// (https:// plus its Host).
	AllowedOrigins []string `yaml:"allowed_origins"`
	CSRFMissing    string   `yaml:"csrf_missing"` // overrides csrf.missing
	// CSRFOff skips the origin check on this route: for APIs that
	// authenticate with bearer tokens rather than cookies.
	CSRFOff bool      `yaml:"csrf_off"`
	Rate    *RateFile `yaml:"rate_limit"` // overrides rate_limit
	// WAFExclusions are WAF rules switched off on this route: a rule ID
	// ("942100") or a range ("942000-942999").
	WAFExclusions []string `yaml:"waf_exclusions"`
	// WAFUninspectedTypes are request body media types this route passes
	// without WAF inspection ("application/x-protobuf", "video/*"). By
	// default every body is inspected whatever its declared type; a type
	// listed here is the operator's explicit choice.
	WAFUninspectedTypes []string `yaml:"waf_uninspected_types"`
	// WAFExecutableUploads lets this route take programs, server scripts
	// and pages with script as file uploads; by default they are refused
	// (a disguised one, such as a script named like an image, is refused
	// on every route).
	WAFExecutableUploads bool `yaml:"waf_executable_uploads"`
	WAFOff               bool `yaml:"waf_off"`
	// MaxBodyBytes is the largest request body this route takes; 0 means
	// limits.max_body_bytes. Raise it on routes that take uploads. With
	// the WAF on it may not exceed waf.request_body_limit.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// EncodedSlashes says what an encoded path separator (%2F, %5C or a
	// raw backslash) means on this route: "decode" (the default) makes it
	// a "/" for routing, the WAF and the service; "keep" forwards it
	// encoded, for services whose paths carry encoded names
	// ("/projects/group%2Frepo"); "refuse" answers 400.
	EncodedSlashes string `yaml:"encoded_slashes"`
	// WebSocketIdleTimeout overrides limits.websocket_idle_timeout on
	// this route; 0 means that one.
	WebSocketIdleTimeout config.Duration `yaml:"websocket_idle_timeout"`
}

// Settings is a validated gateway.yaml in typed form.
type Settings struct {
	Listen         string
	RedirectListen string // "" when off
	RedirectPort   int
	CertFile       string
	KeyFile        string
	MinTLS         uint16
	HSTS           string // the header value; "" when off
	ReadHeader     time.Duration
	Read           time.Duration
	Write          time.Duration
	Idle           time.Duration
	WebSocketIdle  time.Duration // routes' default
	MaxHeaderBytes int
	MaxBodyBytes   int64 // routes' default
	MaxConnsPerIP  int
	MaxRateClients int
	WAFOn          bool
	WAF            waf.Config
	InspectBytes   int64 // waf.body_inspection, defaults applied
	InspectClient  int64
	InspectTimeout time.Duration
	InspectQueued  int
	InspectBodies  int
	Events         string
	Allow, Deny    *prefixSet
	Trusted        *prefixSet
	Routes         []Route
}

// Route is one validated route.
type Route struct {
	Name           string
	Host           string // lower case; "" matches any
	Path           string
	Service        string
	Port           int
	AllowedOrigins []string // normalised scheme://host[:port]
	CSRFMissing    string
	CSRFOff        bool
	RPS            float64 // 0 with Burst 0: no limit
	Burst          int
	Exclusions     *waf.Exclusions
	WAFOff         bool
	MaxBodyBytes   int64         // limits.max_body_bytes when the route sets none
	EncodedSlashes string        // slashDecode, slashKeep or slashRefuse
	WebSocketIdle  time.Duration // limits.websocket_idle_timeout when the route sets none

	// upstream is "service:port", the proxy's URL host, made once.
	upstream string
}

const (
	csrfRefuseWithCookies = "refuse_with_cookies"
	csrfRefuse            = "refuse"
	csrfAllow             = "allow"
	minHSTS               = 365 * 24 * time.Hour
	defaultMaxBody        = 1 << 20
	defaultInspectBytes   = 8 << 20
	defaultInspectTimeout = 5 * time.Second
	defaultInspectBodies  = 2048
)

// LoadFile reads, decodes and validates gateway.yaml. services lists the
// mesh services routes may name; nil means the file's own services list.
func LoadFile(name string, services []string) (*Settings, error) {
	var f File
	if err := config.DecodeFile(name, &f); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	s, err := f.Settings(services)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			ce.File = name
		}
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return s, nil
}

// Settings validates f and returns its typed form. The error names the key
// path of the first problem.
func (f *File) Settings(services []string) (*Settings, error) {
	s := &Settings{
		Listen:         or(f.Listen, ":8443"),
		RedirectListen: or(f.RedirectListen, ":8080"),
		RedirectPort:   f.RedirectPort,
		CertFile:       f.TLS.CertFile,
		KeyFile:        f.TLS.KeyFile,
		ReadHeader:     orDur(f.Limits.ReadHeaderTimeout, 5*time.Second),
		Read:           orDur(f.Limits.ReadTimeout, 60*time.Second),
		Write:          orDur(f.Limits.WriteTimeout, 120*time.Second),
		Idle:           orDur(f.Limits.IdleTimeout, 60*time.Second),
		WebSocketIdle:  orDur(f.Limits.WebSocketIdleTimeout, defaultWebSocketIdle),
		MaxHeaderBytes: orInt(f.Limits.MaxHeaderBytes, 32<<10),
		MaxBodyBytes:   f.Limits.MaxBodyBytes,
		MaxConnsPerIP:  orInt(f.Limits.MaxConnsPerIP, 256),
		MaxRateClients: orInt(f.Limits.MaxRateClients, defaultRateClients),
		Events:         f.Events,
		WAFOn:          !f.WAF.Disabled,
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = defaultMaxBody
	}
	if s.RedirectListen == "off" {
		s.RedirectListen = ""
	}
	if err := checkAddr("listen", s.Listen); err != nil {
		return nil, err
	}
	if s.RedirectListen != "" {
		if err := checkAddr("redirect_listen", s.RedirectListen); err != nil {
			return nil, err
		}
	}
	if s.RedirectPort < 0 || s.RedirectPort > 65535 {
		return nil, config.Errorf("redirect_port", "want a port 1-65535, got %d", s.RedirectPort)
	}
	switch f.TLS.MinVersion {
	case "", "1.2":
		s.MinTLS = tlsVersion12
	case "1.3":
		s.MinTLS = tlsVersion13
	default:
		return nil, config.Errorf("tls.min_version", "want \"1.2\" or \"1.3\", got %q", f.TLS.MinVersion)
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return nil, config.Errorf("tls", "give both cert_file and key_file, or neither")
	}
	if s.CertFile != "" {
		if _, key, err := loadKeyPair(s.CertFile, s.KeyFile); err != nil {
			return nil, config.Errorf("tls."+key, "%v", err)
		}
	}
	hsts, err := f.HSTS.header()
	if err != nil {
		return nil, err
	}
	s.HSTS = hsts
	for _, l := range []struct {
		key string
		v   int64
	}{{"limits.max_header_bytes", int64(f.Limits.MaxHeaderBytes)}, {"limits.max_body_bytes", f.Limits.MaxBodyBytes}, {"limits.max_conns_per_ip", int64(f.Limits.MaxConnsPerIP)}, {"limits.max_rate_clients", int64(f.Limits.MaxRateClients)}} {
		if l.v < 0 {
			return nil, config.Errorf(l.key, "must not be negative, got %d", l.v)
		}
	}
	for _, l := range []struct {
		key string
		v   config.Duration
	}{{"limits.read_header_timeout", f.Limits.ReadHeaderTimeout}, {"limits.read_timeout", f.Limits.ReadTimeout}, {"limits.write_timeout", f.Limits.WriteTimeout}, {"limits.idle_timeout", f.Limits.IdleTimeout}} {
		if l.v < 0 {
			return nil, config.Errorf(l.key, "must not be negative, got %s", time.Duration(l.v))
		}
	}
	if err := checkWebSocketIdle("limits.websocket_idle_timeout", f.Limits.WebSocketIdleTimeout); err != nil {
		return nil, err
	}
	if s.WAF, err = f.WAF.config(); err != nil {
		return nil, err
	}
	bi := f.WAF.BodyInspection
	s.InspectBytes = bi.MaxBytes
	if s.InspectBytes == 0 {
		s.InspectBytes = defaultInspectBytes
	}
	s.InspectClient = bi.MaxBytesPerClient
	if s.InspectClient == 0 {
		s.InspectClient = max(1, s.InspectBytes/4)
	}
	s.InspectTimeout = orDur(bi.QueueTimeout, defaultInspectTimeout)
	s.InspectQueued = bi.MaxQueued
	if s.InspectQueued == 0 {
		s.InspectQueued = defaultMaxQueued(s.InspectBytes)
	}
	s.InspectBodies = orInt(bi.MaxBodies, defaultInspectBodies)
	switch {
	case bi.MaxBodies < 0:
		return nil, config.Errorf("waf.body_inspection.max_bodies", "must not be negative, got %d", bi.MaxBodies)
	case bi.MaxBytes < 0:
		return nil, config.Errorf("waf.body_inspection.max_bytes", "must not be negative, got %d", bi.MaxBytes)
	case bi.MaxBytesPerClient < 0 || s.InspectClient > s.InspectBytes:
		return nil, config.Errorf("waf.body_inspection.max_bytes_per_client", "want 0 to max_bytes (%d), got %d", s.InspectBytes, bi.MaxBytesPerClient)
	case bi.QueueTimeout < 0:
		return nil, config.Errorf("waf.body_inspection.queue_timeout", "must not be negative, got %s", time.Duration(bi.QueueTimeout))
	case bi.MaxQueued < 0:
		return nil, config.Errorf("waf.body_inspection.max_queued", "must not be negative, got %d", bi.MaxQueued)
	}
	if s.Allow, err = parsePrefixes("ip_allow", f.IPAllow); err != nil {
		return nil, err
	}
	if s.Deny, err = parsePrefixes("ip_deny", f.IPDeny); err != nil {
		return nil, err
	}
	if s.Trusted, err = parsePrefixes("trusted_proxies", f.Trusted); err != nil {
		return nil, err
	}
	csrfDefault := or(f.CSRF.Missing, csrfRefuseWithCookies)
	if err := checkCSRF("csrf.missing", csrfDefault); err != nil {
		return nil, err
	}
	rps, burst, err := f.Rate.values("rate_limit", 50)
	if err != nil {
		return nil, err
	}
	if services == nil {
		services = f.Services
	}
	if len(f.Routes) == 0 {
		return nil, config.Errorf("routes", "no routes: the gateway would refuse every request")
	}
	names := map[string]bool{}
	keys := map[string]bool{}
	for i, rf := range f.Routes {
		p := config.Index("routes", i)
		r, err := rf.route(p, services, csrfDefault, rps, burst, s.WebSocketIdle)
		if err != nil {
			return nil, err
		}
		inspected := s.WAFOn && !r.WAFOff
		wafLimit := cmp.Or(s.WAF.RequestBodyLimit, waf.DefaultRequestBodyLimit)
		switch {
		case r.MaxBodyBytes != 0:
		case f.Limits.MaxBodyBytes == 0 && inspected:
			// The default yields to a lower WAF limit; a limit written
			// out must agree with it (below).
			r.MaxBodyBytes = min(s.MaxBodyBytes, wafLimit)
		default:
			r.MaxBodyBytes = s.MaxBodyBytes
		}
		if inspected && r.MaxBodyBytes > wafLimit {
			key := config.Join(p, "max_body_bytes")
			if rf.MaxBodyBytes == 0 {
				key = "limits.max_body_bytes"
			}
			return nil, config.Errorf(key, "%d is above waf.request_body_limit (%d), which the WAF would refuse on route %q: raise the WAF's limit or turn the WAF off on the route", r.MaxBodyBytes, wafLimit, r.Name)
		}
		if names[r.Name] {
			return nil, config.Errorf(config.Join(p, "name"), "route name %q used twice", r.Name)
		}
		names[r.Name] = true
		if k := r.Host + " " + r.Path; keys[k] {
			return nil, config.Errorf(config.Join(p, "path"), "host %q and path %q are already routed", r.Host, r.Path)
		} else {
			keys[k] = true
		}
		s.Routes = append(s.Routes, r)
	}
	return s, nil
}

func (rf *RouteFile) route(p string, services []string, csrfDefault string, rps float64, burst int, wsIdle time.Duration) (Route, error) {
	r := Route{
		Name:         or(rf.Name, rf.Service),
		Host:         strings.ToLower(rf.Host),
		Path:         or(rf.Path, "/"),
		Service:      rf.Service,
		Port:         rf.Port,
		CSRFMissing:  or(rf.CSRFMissing, csrfDefault),
		RPS:          rps,
		Burst:        burst,
		WAFOff:       rf.WAFOff,
		CSRFOff:      rf.CSRFOff,
		MaxBodyBytes: rf.MaxBodyBytes,

		EncodedSlashes: or(rf.EncodedSlashes, slashDecode),
		WebSocketIdle:  orDur(rf.WebSocketIdleTimeout, wsIdle),
	}
	if r.Host == "*" {
		r.Host = ""
	}
	if r.Host != "" {
		h, ok := normalizeHost(r.Host)
		if !ok || strings.ContainsAny(r.Host, "/:@ []") {
			return r, config.Errorf(config.Join(p, "host"), "want a host name without port or scheme, got %q", rf.Host)
		}
		r.Host = h
	}
	if r.Service == "" {
		return r, config.Errorf(config.Join(p, "service"), "required: the mesh service this route reaches")
	}
	if !slices.Contains(services, r.Service) {
		return r, config.Errorf(config.Join(p, "service"), "unknown service %q", r.Service)
	}
	if r.Port < 1 || r.Port > 65535 {
		return r, config.Errorf(config.Join(p, "port"), "want a port 1-65535, got %d", r.Port)
	}
	if !strings.HasPrefix(r.Path, "/") {
		return r, config.Errorf(config.Join(p, "path"), "want a path prefix starting with \"/\", got %q", r.Path)
	}
	if n, err := normalizePath(r.Path, slashRefuse); err != nil || n != r.Path {
		if err == nil {
			err = fmt.Errorf("its normal form is %q", n)
		}
		return r, config.Errorf(config.Join(p, "path"), "want a path prefix in normal form (requests are matched in it), got %q: %v", r.Path, err)
	}
	if r.MaxBodyBytes < 0 {
		return r, config.Errorf(config.Join(p, "max_body_bytes"), "must not be negative, got %d", r.MaxBodyBytes)
	}
	if err := checkWebSocketIdle(config.Join(p, "websocket_idle_timeout"), rf.WebSocketIdleTimeout); err != nil {
		return r, err
	}
	switch r.EncodedSlashes {
	case slashDecode, slashKeep, slashRefuse:
	default:
		return r, config.Errorf(config.Join(p, "encoded_slashes"), "want %q, %q or %q, got %q", slashDecode, slashKeep, slashRefuse, r.EncodedSlashes)
	}
	for j, o := range rf.AllowedOrigins {
		n, err := normOrigin(o)
		if err != nil {
			return r, config.Errorf(config.Index(config.Join(p, "allowed_origins"), j), "%v", err)
		}
		r.AllowedOrigins = append(r.AllowedOrigins, n)
	}
	if err := checkCSRF(config.Join(p, "csrf_missing"), r.CSRFMissing); err != nil {
		return r, err
	}
	if rf.Rate != nil {
		var err error
		if r.RPS, r.Burst, err = rf.Rate.values(config.Join(p, "rate_limit"), 50); err != nil {
			return r, err
		}
	}
	for j, e := range rf.WAFExclusions {
		if _, _, err := waf.ParseExclusion(e); err != nil {
			return r, config.Errorf(config.Index(config.Join(p, "waf_exclusions"), j), "%v", strings.TrimPrefix(err.Error(), "waf: "))
		}
	}
	for j, t := range rf.WAFUninspectedTypes {
		if _, err := waf.ParseUninspectedType(t); err != nil {
			return r, config.Errorf(config.Index(config.Join(p, "waf_uninspected_types"), j), "%v", strings.TrimPrefix(err.Error(), "waf: "))
		}
	}
	ex, err := waf.NewRouteExclusions(rf.WAFExclusions, waf.RouteOptions{UninspectedTypes: rf.WAFUninspectedTypes, ExecutableUploads: rf.WAFExecutableUploads})
	if err != nil {
		return r, config.Errorf(config.Join(p, "waf_exclusions"), "%v", err)
	}
	r.Exclusions = ex
	r.upstream = net.JoinHostPort(r.Service, strconv.Itoa(r.Port))
	return r, nil
}

func (h HSTSFile) header() (string, error) {
	if h.Disabled {
		return "", nil
	}
	age := time.Duration(h.MaxAge)
	if age == 0 {
		age = minHSTS
	}
	if age < minHSTS {
		return "", config.Errorf("hsts.max_age", "want at least one year (\"365d\"), got %s", age)
	}
	v := fmt.Sprintf("max-age=%d", int64(age/time.Second))
	if h.IncludeSubdomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		if !h.IncludeSubdomains {
			return "", config.Errorf("hsts.preload", "preload needs include_subdomains: true")
		}
		v += "; preload"
	}
	return v, nil
}

func (w WAFFile) config() (waf.Config, error) {
	c := waf.Config{
		Paranoia:          w.Paranoia,
		DetectionParanoia: w.DetectionParanoia,
		InboundThreshold:  w.InboundThreshold,
		OutboundThreshold: w.OutboundThreshold,
		DetectionOnly:     w.DetectionOnly,
		FullEvaluation:    w.FullEvaluation,
		RequestBodyLimit:  w.RequestBodyLimit,
		ResponseBodyLimit: w.ResponseBodyLimit,
		InspectResponses:  w.InspectResponses,
		RuleFilesBefore:   w.RulesBefore,
		RuleFiles:         w.Rules,
		MaxArgLength:      w.MaxArgLength,
		MaxArgNameLength:  w.MaxArgNameLength,
		MaxTotalArgLength: w.MaxTotalArgLength,
		MaxArgs:           w.MaxArgs,
		Budget:            time.Duration(w.Budget),
	}
	for _, l := range []struct {
		key string
		v   int
	}{{"waf.max_arg_length", w.MaxArgLength}, {"waf.max_arg_name_length", w.MaxArgNameLength}, {"waf.max_total_arg_length", w.MaxTotalArgLength}, {"waf.max_args", w.MaxArgs}} {
		if l.v < 0 {
			return c, config.Errorf(l.key, "must be positive, got %d", l.v)
		}
	}
	if b := time.Duration(w.Budget); b < 0 || b > 0 && b < time.Millisecond {
		return c, config.Errorf("waf.budget", "want at least 1ms, got %v", b)
	}
	if c.Paranoia < 0 || c.Paranoia > 4 {
		return c, config.Errorf("waf.paranoia", "want 1 to 4, got %d", c.Paranoia)
	}
	if d := c.DetectionParanoia; d != 0 && (d < max(c.Paranoia, 1) || d > 4) {
		return c, config.Errorf("waf.detection_paranoia", "want %d to 4 (not below paranoia), got %d", max(c.Paranoia, 1), d)
	}
	if c.InboundThreshold < 0 {
		return c, config.Errorf("waf.inbound_threshold", "must be positive, got %d", c.InboundThreshold)
	}
	if c.OutboundThreshold < 0 {
		return c, config.Errorf("waf.outbound_threshold", "must be positive, got %d", c.OutboundThreshold)
	}
	if c.RequestBodyLimit < 0 {
		return c, config.Errorf("waf.request_body_limit", "must be positive, got %d", c.RequestBodyLimit)
	}
	if c.ResponseBodyLimit < 0 {
		return c, config.Errorf("waf.response_body_limit", "must be positive, got %d", c.ResponseBodyLimit)
	}
	for key, list := range map[string][]string{"waf.rules_before": w.RulesBefore, "waf.rules": w.Rules} {
		for i, f := range list {
			if _, err := os.Stat(f); err != nil {
				return c, config.Errorf(config.Index(key, i), "rule file: %v", err)
			}
		}
	}
	return c, nil
}

func (r RateFile) values(path string, defRPS float64) (float64, int, error) {
	if r.Off {
		return 0, 0, nil
	}
	if r.RPS < 0 {
		return 0, 0, config.Errorf(config.Join(path, "rps"), "must be positive, got %v", r.RPS)
	}
	if r.Burst < 0 {
		return 0, 0, config.Errorf(config.Join(path, "burst"), "must be positive, got %d", r.Burst)
	}
	rps := r.RPS
	if rps == 0 {
		rps = defRPS
	}
	burst := r.Burst
	if burst == 0 {
		burst = max(1, int(2*rps))
	}
	return rps, burst, nil
}

func checkCSRF(path, v string) error {
	switch v {
	case csrfRefuseWithCookies, csrfRefuse, csrfAllow:
		return nil
	}
	return config.Errorf(path, "want %q, %q or %q, got %q", csrfRefuseWithCookies, csrfRefuse, csrfAllow, v)
}

// checkWebSocketIdle refuses a WebSocket idle timeout under a second (0,
// the default, aside): shorter, it cuts connections between the messages
// of any ordinary heartbeat, and is more likely a slip than a choice.
func checkWebSocketIdle(path string, v config.Duration) error {
	if d := time.Duration(v); d < 0 || d > 0 && d < time.Second {
		return config.Errorf(path, "want a second or more (or leave it out for %s), got %s", defaultWebSocketIdle, d)
	}
	return nil
}

func checkAddr(path, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return config.Errorf(path, "want host:port, got %q", addr)
	}
	return nil
}

// normOrigin returns scheme://host[:port] in lower case, without the
// trailing dot of a fully qualified host name.
func normOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("want an origin such as \"https://shop.example\", got %q", o)
	}
	host, ok := normalizeHost(u.Host)
	if !ok {
		return "", fmt.Errorf("want an origin such as \"https://shop.example\", got %q", o)
	}
	scheme := strings.ToLower(u.Scheme)
	if p := u.Port(); p != "" && !(scheme == "https" && p == "443") && !(scheme == "http" && p == "80") {
		// A browser leaves the scheme's default port out of an origin.
		host = net.JoinHostPort(host, p)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}

// prefixSet is a list of IP prefixes. An empty set contains nothing.
type prefixSet struct{ prefixes []netip.Prefix }

// parsePrefixes reads addresses and CIDRs. An IPv4 address written in
// IPv6's mapped form ("::ffff:192.0.2.1", "::ffff:192.0.2.0/120") is the
// IPv4 address or range: clients are compared in IPv4 form, so a mapped
// entry would otherwise never match (a deny list that fails open). A
// mapped prefix shorter than /96 names no IPv4 range and is refused.
func parsePrefixes(path string, list []string) (*prefixSet, error) {
	s := &prefixSet{}
	for i, v := range list {
		var p netip.Prefix
		var err error
		if strings.Contains(v, "/") {
			p, err = netip.ParsePrefix(v)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(v)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil || p.Addr().Zone() != "" {
			return nil, config.Errorf(config.Index(path, i), "want an IP address or CIDR such as \"10.0.0.0/8\", got %q", v)
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return nil, config.Errorf(config.Index(path, i), "%q: an IPv4-mapped prefix needs a length of at least 96; write the IPv4 range instead", v)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		s.prefixes = append(s.prefixes, p.Masked())
	}
	return s, nil
}

func (s *prefixSet) empty() bool { return s == nil || len(s.prefixes) == 0 }

func (s *prefixSet) contains(a netip.Addr) bool {
	if s == nil {
		return false
	}
	a = plainIP(a)
	for _, p := range s.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orDur(v config.Duration, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return time.Duration(v)
}
