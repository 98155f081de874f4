// Package waf runs the OWASP Core Rule Set v4 on Coraza v3 for moat's edge
// gateway. It owns rule loading (CRS embedded in the binary, plus the
// operator's own SecLang files), the paranoia and anomaly settings, per-route
// rule exclusions, and turning what matched into a Verdict the gateway can
// act on and record. It never writes an answer to a client: the caller
// decides what a blocked request sees (moat answers 403 with a request ID).
package waf

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/debuglog"
	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
)

// Defaults for the zero values of Config.
const (
	DefaultParanoia          = 1
	DefaultInboundThreshold  = 5
	DefaultOutboundThreshold = 4
	DefaultRequestBodyLimit  = 13 << 20 // 13 MiB, as CRS recommends
	DefaultResponseBodyLimit = 512 << 10
	requestBodyInMemory      = 128 << 10
)

// Config sets up a WAF. The zero value is CRS at paranoia level 1 with the
// default anomaly thresholds, blocking, request bodies inspected up to 13 MiB
// and response bodies not inspected.
type Config struct {
	// Paranoia is the blocking paranoia level, 1 to 4; 0 means 1.
	Paranoia int
	// DetectionParanoia is the level up to which rules run and are logged
	// without counting towards a block; 0 means Paranoia. It may not be
	// below Paranoia.
	DetectionParanoia int
	// InboundThreshold is the anomaly score at which a request is blocked;
	// 0 means 5 (one critical match).
	InboundThreshold int
	// OutboundThreshold is the anomaly score at which a response is
	// blocked; 0 means 4.
	OutboundThreshold int
	// DetectionOnly runs every rule and reports what would have been
	// blocked, but blocks nothing.
	DetectionOnly bool
	// FullEvaluation runs every detection rule on a request even once
	// its block is certain, so that the verdict lists every rule that
	// matched (for tuning false positives). By default the evaluation
	// stops there and goes straight to the blocking decision, which is
	// the same either way (see evalstop.go; Verdict.StoppedAt).
	// DetectionOnly implies it.
	FullEvaluation bool
	// RequestBodyLimit is the largest request body accepted, in bytes; a
	// larger body is refused (fail closed). 0 means 13 MiB.
	RequestBodyLimit int64
	// ResponseBodyLimit is the largest response body of an inspected type
	// sent, in bytes, when InspectResponses is set; a larger one is
	// refused once the rules have read that much of it (fail closed, as
	// RequestBodyLimit). 0 means 512 KiB.
	ResponseBodyLimit int64
	// InspectResponses turns on the RESPONSE-95x rules over response
	// headers and text bodies. A body of an inspected type the rules
	// cannot read in full (past ResponseBodyLimit, in another content
	// coding than gzip, in a charset that does not spell ASCII as ASCII
	// such as UTF-16, or under more than one Content-Type) is an error
	// from Tx.Response, not sent unread.
	InspectResponses bool
	// RuleFilesBefore are SecLang files loaded after the CRS setup and
	// before the CRS rules: the place for runtime exclusions (ctl:...).
	RuleFilesBefore []string
	// RuleFiles are SecLang files loaded after the CRS rules: the place for
	// custom rules and configure-time exclusions (SecRuleRemoveById).
	RuleFiles []string
	// Directives is SecLang text loaded after RuleFiles (tests, embedders).
	Directives string
	// AllowedMethods are the HTTP methods CRS lets through; nil means
	// DefaultAllowedMethods.
	AllowedMethods []string
	// AllowedContentTypes are the request body types CRS lets through
	// (lower case, without parameters); nil means DefaultContentTypes.
	AllowedContentTypes []string
	// StockCRS runs CRS exactly as shipped: none of moat's own rules, CRS's
	// default methods and content types, no argument limits or budget.
	// For comparisons and CRS's own regression suite.
	StockCRS bool

	// noGate evaluates every rule (see gate.go) and noResolve decides
	// nothing at load (see resolve.go): the references the gate and the
	// resolver are tested against.
	noGate    bool
	noResolve bool
	// noHeaderCache: the gate asks every header value on every request
	// (see gatecache.go), the reference the cache is tested against.
	noHeaderCache bool
	// keepLogData: every rule keeps its logdata (see logdata.go), the
	// reference dropping it is tested against.
	keepLogData bool
	// noSetvarFold: setvars expand their TX macros on every match (see
	// setvarfold.go), the reference folding them is tested against.
	noSetvarFold bool
	// noEvalSkip: CRS's blocking evaluation is always left to Coraza
	// (see evalskip.go), the reference skipping it is tested against.
	noEvalSkip bool
	// keepConsts: the phase-1 gate sets every TX constant the resolver
	// folded, read or not (see txreads.go), the reference setting only
	// those read is tested against.
	keepConsts bool

	// MaxArgLength is the longest argument value accepted, in bytes
	// (CRS's tx.arg_length); 0 means 256 KiB. MaxArgNameLength is the
	// longest name (tx.arg_name_length); 0 means 8 KiB.
	// MaxTotalArgLength bounds names and values together
	// (tx.total_arg_length); 0 means 1 MiB. MaxArgs is the most arguments
	// taken from any one source, the query, the path or the body
	// (SecArgumentsLimit); 0 means 4096. A request past any of them is
	// refused (413, or 400 for MaxArgs) before the attack rules run: they
	// bound the WAF's work on one request.
	MaxArgLength      int
	MaxArgNameLength  int
	MaxTotalArgLength int
	MaxArgs           int
	// Budget is the CPU time the attack rules may spend on one request
	// (phase 2); a request still being inspected when it is used up is
	// refused with 503 (fail closed). 0 means 1s.
	Budget time.Duration
}

// DefaultAllowedMethods are what REST APIs and browsers use.
var DefaultAllowedMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// DefaultContentTypes are CRS's list plus what browsers and telemetry send
// today: text/plain (navigator.sendBeacon), NDJSON, protobuf (gRPC-Web),
// CSP and Reporting API reports, octet streams, and the AWS JSON protocol
// that browser SDKs speak (inspected as JSON).
var DefaultContentTypes = []string{
	"application/x-www-form-urlencoded", "multipart/form-data", "multipart/related",
	"text/xml", "application/xml", "application/soap+xml",
	"application/json", "application/cloudevents+json", "application/cloudevents-batch+json",
	"text/plain", "application/x-ndjson", "application/x-json-stream",
	"application/x-protobuf", "application/grpc-web+proto", "application/grpc-web-text",
	"application/csp-report", "application/reports+json", "application/octet-stream",
	"application/x-amz-json-1.0", "application/x-amz-json-1.1",
}

// moatRules are moat's own rules (rules/moat.conf), loaded before CRS.
//
//go:embed rules/moat.conf
var moatRules string

// moatCVERules are moat's rules for the shapes of known exploits
// (rules/moat-cve.conf), loaded after moatRules.
//
//go:embed rules/moat-cve.conf
var moatCVERules string

// moatBeforeBlocking runs after every attack rule and before CRS's
// blocking evaluation (rules/moat-before-blocking.conf).
//
//go:embed rules/moat-before-blocking.conf
var moatBeforeBlocking string

// moatAfter are moat's changes to CRS rules, loaded after CRS.
//
//go:embed rules/moat-after.conf
var moatAfter string

// registerOnce adds moat's transformations to Coraza's registry, which is
// process-wide; registering twice would be harmless but is not needed.
var registerOnce sync.Once

func register() {
	registerOnce.Do(func() {
		plugins.RegisterTransformation("moatDecodeEvasions", decodeEvasions)
		plugins.RegisterAction("moatInspect", newInspectAction)
		plugins.RegisterAction("moatContext", newContextAction)
		plugins.RegisterAction("moatGate", newGateAction)
		plugins.RegisterAction("moatEval", newEvalAction)
		plugins.RegisterOperator("moatEval", newEvalOp)
		plugins.RegisterOperator("detectSQLi", newSQLiOp)
		plugins.RegisterOperator("moatSQLi", newNeedScoreOp(&familySQL, sqlNeed))
		plugins.RegisterOperator("moatXSS", newNeedScoreOp(&familyXSS, xssNeed))
		plugins.RegisterOperator("moatShell", newNeedScoreOp(&familyShell, shellNeed))
		plugins.RegisterOperator("moatUpload", newUploadOp)
		plugins.RegisterOperator("moatSSTI", newNeedScoreOp(scorerOnly("ssti", sstiScore), sstiNeed))
		plugins.RegisterOperator("moatSerialized", newScoreOp(scorerOnly("serialized", func(v string) int { return attackIf(serializedKind(v) != "") })))
		plugins.RegisterOperator("moatMetadataURL", newNeedScoreOp(scorerOnly("metadata-url", func(v string) int { return attackIf(metadataURL(v) != "") }), metadataURLNeed))
		plugins.RegisterOperator("moatRemoteRef", newNeedScoreOp(scorerOnly("remote-ref", refScore), refNeed))
		plugins.RegisterOperator("moatFileRef", newNeedScoreOp(scorerOnly("file-ref", fileRefScore), refNeed))
		plugins.RegisterOperator("moatProxyHeader", newProxyHeaderOp)
		plugins.RegisterOperator("moatFileNameFromFile", newFileNameOp)
		plugins.RegisterOperator("moatOSFileFromFile", newOSFileOp)
		plugins.RegisterOperator("moatArgFileNameFromFile", newArgFileNameOp)
		plugins.RegisterOperator("moatArgOSFileFromFile", newArgOSFileOp)
		plugins.RegisterOperator("moatArgLimits", newArgLimitsOp)
		plugins.RegisterOperator("moatOverBudget", newBudgetOp)
		plugins.RegisterBodyProcessor(bodyProcessorName, newRawBody)
		plugins.RegisterBodyProcessor(formBodyProcessorName, newFormBody)
		plugins.RegisterBodyProcessor(xmlBodyProcessorName, newXMLBody)
		plugins.RegisterOperator("rx", newRxOp)
		plugins.RegisterOperator("pm", newPMOp)
		plugins.RegisterOperator("pmFromFile", newPMFromFileOp)
		plugins.RegisterOperator("pmf", newPMFromFileOp)
	})
}

// WAF is a loaded rule set. It is safe for concurrent use; each request gets
// its own Tx.
type WAF struct {
	waf       coraza.WAF
	detect    bool
	bodyLimit int64
	rx        RegexStats
	gate      GateStats
	plan      *gatePlan // the gate's; nil when it is off

	// res is what the resolver decided (nil when it is off); a request
	// whose route excludes one of its anchors is inspected by the
	// unresolved rule set, built on first use from cfg.
	res        *resolution
	cfg        Config
	anchorHits sync.Map // *Exclusions → bool
	fullOnce   sync.Once
	full       *WAF
	fullErr    error
}

// New loads CRS and the configured rule files. Errors name the file or
// setting at fault.
func New(cfg Config) (*WAF, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	register()
	pl := orDefault(cfg.Paranoia, DefaultParanoia)
	dpl := orDefault(cfg.DetectionParanoia, pl)
	var b strings.Builder
	engine := "On"
	if cfg.DetectionOnly {
		engine = "DetectionOnly"
	}
	respAccess := "Off"
	if cfg.InspectResponses {
		respAccess = "On"
	}
	b.WriteString(gateDirectives)
	if cfg.StockCRS {
		// moat.conf, which holds the phase-2 gate, is not loaded.
		b.WriteString(stockGate2)
	}
	fmt.Fprintf(&b, baseDirectives, engine,
		orDefault64(cfg.RequestBodyLimit, DefaultRequestBodyLimit),
		min(requestBodyInMemory, orDefault64(cfg.RequestBodyLimit, DefaultRequestBodyLimit)),
		bodyBoundPattern(),
		orDefault(cfg.MaxArgs, DefaultMaxArgs),
		respAccess, orDefault64(cfg.ResponseBodyLimit, DefaultResponseBodyLimit))
	b.WriteString("Include @crs-setup.conf.example\n")
	fmt.Fprintf(&b, setupAction, pl, dpl,
		orDefault(cfg.InboundThreshold, DefaultInboundThreshold),
		orDefault(cfg.OutboundThreshold, DefaultOutboundThreshold))
	if !cfg.StockCRS {
		fmt.Fprintf(&b, limitsAction,
			orDefault(cfg.MaxArgNameLength, DefaultMaxArgNameLength),
			orDefault(cfg.MaxArgLength, DefaultMaxArgLength),
			orDefault(cfg.MaxTotalArgLength, DefaultMaxTotalArgLength))
		methods := cfg.AllowedMethods
		if methods == nil {
			methods = DefaultAllowedMethods
		}
		types := cfg.AllowedContentTypes
		if types == nil {
			types = DefaultContentTypes
		}
		fmt.Fprintf(&b, "SecAction \"id:900001,phase:1,pass,t:none,nolog,setvar:'tx.allowed_methods=%s',setvar:'tx.allowed_request_content_type=|%s|'\"\n",
			strings.Join(methods, " "), strings.Join(types, "| |"))
	}
	for _, f := range cfg.RuleFilesBefore {
		text, err := readRules(f)
		if err != nil {
			return nil, err
		}
		b.WriteString(text)
	}
	if !cfg.StockCRS {
		// Before CRS, so that its phase-2 rules score before CRS's
		// blocking evaluation (949110) runs.
		b.WriteString(moatRules)
		b.WriteString(moatCVERules)
	}
	if cfg.StockCRS {
		b.WriteString("Include @owasp_crs/*.conf\n")
	} else {
		includes, err := crsIncludes(orDefaultDur(cfg.Budget, DefaultBudget), moatBeforeBlocking)
		if err != nil {
			return nil, err
		}
		b.WriteString(includes)
		b.WriteString(moatAfter)
	}
	for _, f := range cfg.RuleFiles {
		text, err := readRules(f)
		if err != nil {
			return nil, err
		}
		b.WriteString(text)
	}
	b.WriteString(cfg.Directives)
	w, patterns, gates, err := build(b.String())
	if err != nil {
		return nil, fmt.Errorf("waf: load rules: %w", err)
	}
	out := &WAF{waf: w, detect: cfg.DetectionOnly, bodyLimit: orDefault64(cfg.RequestBodyLimit, DefaultRequestBodyLimit), rx: statsOf(patterns), cfg: cfg}
	if !cfg.keepLogData {
		// Only the cost of building it goes: an error leaves the rules'
		// logdata as loaded.
		out.gate.LogData, out.gate.LogDataErr = dropLogData(w)
	}
	if !cfg.noResolve {
		// Before the gate is planned: it plans over the rules left.
		if res, err := resolve(w); err != nil {
			// The rule set is as loaded: every rule is evaluated.
			out.gate.ResolveErr = err
		} else {
			out.res = res
			out.gate.Resolved, out.gate.Folded, out.gate.Consts = res.removed, res.folded, len(res.consts)
			out.gate.Unrun = res.unrun
			for _, g := range gates {
				g.consts.Store(&res.consts)
			}
		}
	}
	if !cfg.noGate {
		var consts []txConst
		if out.res != nil {
			consts = out.res.consts
		}
		// The phase-2 gate is moat.conf's, or stock CRS's (90008 is
		// another rule in moat.conf).
		phase2 := gate2ID
		if cfg.StockCRS {
			phase2 = stockGate2ID
		}
		ids := []int{gate1ID, phase2}
		if !cfg.StockCRS {
			// The phase-2 gate's second pass (gatesplit.go).
			ids = append(ids, gateRestID)
		}
		p, err := planGate(w, ids, dpl, orDefaultDur(cfg.Budget, DefaultBudget), consts)
		if err != nil {
			// Coraza's rules are not laid out as the gate reads them:
			// every rule is evaluated, as without the gate.
			out.gate.Err = err
		} else {
			out.gate.Rules = p.rules
			if cfg.noHeaderCache {
				p.hdr = nil
			}
			out.plan = p
			// A route that excludes a chain the gate decides with what
			// its first link would write takes the unresolved rule set
			// (Begin), whose gate leaves the chain to Coraza.
			if out.res != nil {
				for _, id := range p.capturedHeads() {
					out.res.anchors[id] = nil
				}
				if p.deferredTargets {
					out.res.anchors[phase2] = nil
					out.res.anchors[p.targetGate] = nil
				}
			} else {
				p.dropCaptured()
			}
			for _, g := range gates {
				g.p.Store(p)
			}
			if out.res != nil && !cfg.noSetvarFold {
				values := make(map[string]string, len(out.res.consts))
				for _, c := range out.res.consts {
					values[c.key] = c.value
				}
				if rules, err := corazaRules(w); err == nil {
					// An error leaves the rest as loaded: only the
					// expansions' cost stays.
					out.gate.Setvars, _ = foldSetvars(rules, p.consts, values)
				}
			}
		}
	}
	if !cfg.noEvalSkip {
		// After the folding: the plan keeps the setvars' macros. An
		// error, or a rule set laid out otherwise, leaves the evaluation
		// to Coraza.
		if rules, err := corazaRules(w); err == nil {
			out.gate.Evals, _ = planEvals(rules)
		}
	}
	if !cfg.noEvalSkip && !cfg.FullEvaluation && !cfg.DetectionOnly {
		// After the evaluation's plan, which it runs on. An error, or
		// a rule set it cannot prove a stop safe in, leaves every rule
		// to Coraza.
		if rules, err := corazaRules(w); err == nil {
			values := map[string]string{}
			if out.res != nil {
				for _, c := range out.res.consts {
					values[c.key] = c.value
				}
			}
			out.gate.Stops, out.gate.StopErr = planStops(w, rules, values)
		}
	}
	if out.res != nil {
		out.res.set = out.res.consts
		if !cfg.keepConsts {
			// Last: what the rules read is what is left after the
			// folding. An error leaves every constant set.
			if rules, err := corazaRules(w); err == nil {
				if read, err := readConsts(rules, out.res.consts, out.res.responses); err == nil {
					for _, g := range gates {
						g.consts.Store(&read)
					}
					out.res.set = read
				}
			}
		}
		out.gate.ConstsRead = len(out.res.set)
	}
	return out, nil
}

// GateStats says what the gate (see gate.go) decides over.
type GateStats struct {
	// Rules is the number of rules the gate may remove from a request
	// (counted once per gate that decides for them).
	Rules int
	// Err is why the gate is off, if it is: every rule is evaluated.
	Err error
	// Resolved is the number of rules the resolver (see resolve.go)
	// removed from the rule set at load; Folded of them always matched,
	// and their Consts TX variables are set once at the start of each
	// transaction instead.
	Resolved, Folded, Consts int
	// Unrun is the number of rules of phases no transaction runs (the
	// response phases' without response inspection, the logging
	// phase's), which the resolver also left out (phaseRuns).
	Unrun int
	// ConstsRead is how many of the Consts a rule left or moat's code
	// reads at run time (txreads.go): the phase-1 gate sets those alone.
	ConstsRead int
	// ResolveErr is why the resolver is off, if it is.
	ResolveErr error
	// LogData is the number of rules and chain links whose logdata,
	// which nothing reads, was dropped at load (logdata.go); LogDataErr
	// why none was, if Coraza's rules are not laid out as expected.
	LogData    int
	LogDataErr error
	// Setvars is the number of setvar values whose macros read only TX
	// constants, written in at load (setvarfold.go).
	Setvars int
	// Evals is the number of rules whose moatEval action decides CRS's
	// blocking evaluation after it (evalskip.go).
	Evals int
	// Stops is the number of rules from whose matches the evaluation
	// may stop once the block is certain (evalstop.go); StopErr is why
	// there are none, if Coraza's rules are not laid out as expected.
	Stops   int
	StopErr error
}

// GateStats reports on the gate.
func (w *WAF) GateStats() GateStats { return w.gate }

// The gates' rule IDs: phase 1 first of all rules, phase 2 after moat's
// inspection pass (rules/moat.conf), or first of phase 2 for stock CRS.
const (
	gate1ID      = 90006
	gate2ID      = 90007
	stockGate2ID = 90008
)

const gateDirectives = `SecAction "id:90006,phase:1,pass,nolog,t:none,moatGate"
`

const stockGate2 = `SecAction "id:90008,phase:2,pass,nolog,t:none,moatGate"
`

// build loads directives into a Coraza WAF and returns the @rx patterns
// its rules use. Builds are serialised: the operator registry that hands
// out the patterns is process-wide.
func build(directives string) (coraza.WAF, map[string]*rxCompiled, []*gateHolder, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	patterns := map[string]*rxCompiled{}
	rxCollect.Store(&patterns)
	defer rxCollect.Store(nil)
	var gates []*gateHolder
	gateBuilding.Store(&gates)
	defer gateBuilding.Store(nil)
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDebugLogger(newLazyLogger(debuglog.Noop())).WithDirectives(directives))
	return w, patterns, gates, err
}

// RegexStats says how the rule set's @rx patterns run.
func (w *WAF) RegexStats() RegexStats { return w.rx }

func (c Config) validate() error {
	if c.Paranoia < 0 || c.Paranoia > 4 {
		return fmt.Errorf("waf: paranoia %d: want 1 to 4", c.Paranoia)
	}
	pl := orDefault(c.Paranoia, DefaultParanoia)
	if c.DetectionParanoia != 0 && (c.DetectionParanoia < pl || c.DetectionParanoia > 4) {
		return fmt.Errorf("waf: detection paranoia %d: want %d to 4 (not below the blocking level)", c.DetectionParanoia, pl)
	}
	if c.InboundThreshold < 0 || c.OutboundThreshold < 0 {
		return errors.New("waf: anomaly thresholds must be positive")
	}
	if c.RequestBodyLimit < 0 || c.ResponseBodyLimit < 0 {
		return errors.New("waf: body limits must be positive")
	}
	if c.MaxArgLength < 0 || c.MaxArgNameLength < 0 || c.MaxTotalArgLength < 0 || c.MaxArgs < 0 {
		return errors.New("waf: argument limits must be positive")
	}
	if c.Budget < 0 || c.Budget > 0 && c.Budget < time.Millisecond {
		return fmt.Errorf("waf: budget %v: want at least 1ms", c.Budget)
	}
	return nil
}

func readRules(name string) (string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("waf: rule file: %w", err)
	}
	// Check the file on its own so a syntax error names it.
	if _, _, _, err := build(string(data)); err != nil {
		return "", fmt.Errorf("waf: rule file %q: %w", name, err)
	}
	return string(data) + "\n", nil
}

// Close releases what the rule set holds. It is safe to call more than once.
func (w *WAF) Close() error {
	w.fullOnce.Do(func() {}) // no unresolved rule set after Close
	if w.full != nil {
		w.full.Close()
	}
	if c, ok := w.waf.(experimental.WAFCloser); ok {
		return c.Close()
	}
	return nil
}

const baseDirectives = `SecRuleEngine %s
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "^application/(?:[a-z0-9.-]+[+]json|x-amz-json-1\.[01])" "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyJsonDepthLimit 1024
SecRequestBodyLimit %d
SecRequestBodyInMemoryLimit %d
SecRequestBodyLimitAction Reject
SecRule REQBODY_ERROR_MSG "@rx %s" "id:200007,phase:2,t:none,log,deny,status:400,msg:'Request body past the bounds of what the WAF takes apart.',logdata:'%%{reqbody_error_msg}'"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:403,msg:'Failed to parse request body.',logdata:'%%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:403,msg:'Multipart request body failed strict validation.',logdata:'%%{reqbody_error_msg}%%{tx.moat_multipart_error}'"
SecArgumentsLimit %d
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" "id:200004,phase:1,t:none,log,deny,status:400,msg:'Argument limit reached (query or path arguments)'"
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" "id:200005,phase:2,t:none,log,deny,status:400,msg:'Argument limit reached (body arguments)'"
SecResponseBodyAccess %s
SecResponseBodyMimeType text/plain text/html text/xml application/json
SecResponseBodyLimit %d
SecResponseBodyLimitAction ProcessPartial
SecAuditEngine Off
SecRxPreFilter On
`

// bodyBoundErrors are the body processors' refusals of a body past the
// bounds on what they take apart, as opposed to one that does not parse:
// moat's (too many parts or tokens, too deep) and Coraza's JSON
// processor's (nesting past SecRequestBodyJsonDepthLimit, a flattened
// form past its byte budget). Rule 200007 answers them 400, as the other
// bounds on arguments are answered; every other body that fails to parse
// is an evasion, refused 403 by rule 200002 (see docs/WAF.md).
var bodyBoundErrors = []string{errBodyTooComplex.Error(), "max recursion reached while reading json object", "flattened form exceeds the"}

// bodyBoundPattern matches REQBODY_ERROR_MSG ("PROCESSOR: message") for
// the bodyBoundErrors.
func bodyBoundPattern() string {
	quoted := make([]string, len(bodyBoundErrors))
	for i, m := range bodyBoundErrors {
		quoted[i] = regexp.QuoteMeta(m)
	}
	return ": (?:" + strings.Join(quoted, "|") + ")"
}

const setupAction = `SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d,setvar:tx.detection_paranoia_level=%d,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=%d"
`

// limitsAction sets CRS's argument limits (920360-920390 read them; moat
// rule 90003 enforces them before the attack rules run).
const limitsAction = `SecAction "id:900002,phase:1,pass,t:none,nolog,setvar:tx.arg_name_length=%d,setvar:tx.arg_length=%d,setvar:tx.total_arg_length=%d"
`

func orDefaultDur(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orDefault64(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return v
}

// Verdict is what the rules made of a request or response.
type Verdict struct {
	// Block is true when the request must not go on: the rules interrupted
	// it (never in detection-only mode).
	Block bool
	// Status is the status the rules asked for when Block is set: 403,
	// a body that does not parse as its type too; 400 for one past the
	// bounds on what the WAF takes apart or on arguments; 413 for one
	// too large; 503 past the CPU budget.
	Status int
	// Detected is true when the anomaly score reached the threshold or a
	// rule interrupted, whether or not the WAF blocks.
	Detected bool
	// RuleIDs lists every rule that matched and logs, in order, but for
	// those in Discounted.
	RuleIDs []int
	// Variable names what the first attack rule matched ("ARGS:q"), and
	// Matched its value, masked and truncated (see Mask).
	Variable string
	Matched  string
	// Message is the first attack rule's message.
	Message string
	// Discounted lists the rules whose every match the context scorers
	// judged benign (see context.go): they matched, their score was taken
	// back, and RuleIDs leaves them out.
	Discounted []int
	// StoppedAt is the blocking anomaly score at which the evaluation
	// stopped once the block was certain (see Config.FullEvaluation):
	// rules after that point were not run, and RuleIDs does not list
	// those that would have matched. 0 when every rule ran. (A stop
	// always ends in a block.)
	StoppedAt int
}

// Tx inspects one request (and optionally its response). Close it when the
// request is done: it holds the buffered body.
type Tx struct {
	w   *WAF
	tx  types.Transaction
	ex  *Exclusions // the route's, may be nil
	err error       // the rule set for this route could not be built
}

// Begin starts a transaction. ex (may be nil) removes rules for this
// request only: how a route's exclusions apply.
func (w *WAF) Begin(ex *Exclusions) *Tx {
	if w.res != nil && !ex.Empty() && w.excludesAnchor(ex) {
		full, err := w.unresolved()
		if err != nil {
			return &Tx{err: err}
		}
		return full.Begin(ex)
	}
	tx := w.waf.NewTransactionWithID(txID())
	if ex != nil {
		ex.apply(tx)
	}
	beginMemo(tx)
	return &Tx{w: w, tx: tx, ex: ex}
}

// txID is a new transaction's ID (Coraza's UNIQUE_ID, which CRS's
// sampling hashes, and its debug log's tx_id): 64 random bits in hex.
// Coraza's own draws 19 letters one by one, some 2k instructions a
// transaction.
func txID() string {
	return strconv.FormatUint(rand.Uint64(), 16)
}

// Close ends the transaction. Safe to call more than once.
//
// Coraza's logging phase (5) is not run: its rules (CRS's
// RESPONSE-980 correlation) only feed Coraza's audit log, which moat keeps
// off, and cannot change a verdict already given; moat reports from the
// Verdict instead.
func (t *Tx) Close() error {
	if t.tx == nil {
		return nil
	}
	endMemo(t.tx)
	err := t.tx.Close()
	t.tx = nil
	return err
}

// Request runs phases 1 and 2 over r. client is the client's address as the
// gateway determined it (after trusted proxies), "ip" or "ip:port". The body,
// if inspected, is buffered and r.Body replaced so the request can still be
// forwarded. Bodies larger than the limit are refused (413).
func (t *Tx) Request(r *http.Request, client string) (Verdict, error) {
	if t.err != nil {
		return Verdict{}, t.err
	}
	tx := t.tx
	host, port := splitHostPort(client)
	lhost, lport := "", 0
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		lhost, lport = splitHostPort(la.String())
	}
	tx.ProcessConnection(host, port, lhost, lport)
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	tx.ProcessURI(uri, r.Method, r.Proto)
	wireLength := r.Header.Get("Content-Length")
	decompress(r, t.w.bodyLimit)
	if r.Header.Get("Content-Length") == "" && wireLength != "" {
		// A decompressed body has no length of its own; the rules see
		// the length it came with.
		tx.AddRequestHeader("Content-Length", wireLength)
	}
	if r.Host != "" {
		tx.AddRequestHeader("Host", r.Host)
		tx.SetServerName(hostOnly(r.Host))
	}
	// In a fixed order (net/http keeps headers in a map), so that the
	// first match a verdict reports does not change between runs.
	for _, k := range slices.Sorted(maps.Keys(r.Header)) {
		for _, v := range r.Header[k] {
			if k == "Content-Type" {
				v = trimEmptyParams(v)
			}
			tx.AddRequestHeader(k, v)
		}
	}
	if r.ContentLength >= 0 && r.Header.Get("Content-Length") == "" && r.Body != nil && r.Body != http.NoBody {
		// HTTP/2 clients may leave the length to the framing; the rules
		// expect to see it.
		tx.AddRequestHeader("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	for _, te := range r.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		return t.verdict(), nil
	}
	if st, ok := tx.(plugintypes.TransactionState); ok && t.w.plan != nil {
		t.w.plan.endPhase1(st)
	}
	bodied := false
	if tx.IsRequestBodyAccessible() && r.Body != nil && r.Body != http.NoBody && t.ex.inspects(r.Header.Get("Content-Type")) {
		bodied = true
		it, err := readBody(tx, r.Body, r.ContentLength, t.w.bodyLimit)
		if err != nil {
			return Verdict{}, fmt.Errorf("waf: read request body: %w", err)
		}
		if it != nil {
			return t.verdict(), nil
		}
		if tv, ok := tx.(interface {
			Variables() plugintypes.TransactionVariables
		}); ok && formDataBody(r.Header["Content-Type"]) {
			body, err := tx.RequestBodyReader()
			if err != nil {
				return Verdict{}, fmt.Errorf("waf: request body: %w", err)
			}
			ctype := trimEmptyParams(r.Header["Content-Type"][0])
			checkMultipart(tv.Variables(), ctype, body)
			if body, err = tx.RequestBodyReader(); err != nil {
				return Verdict{}, fmt.Errorf("waf: request body: %w", err)
			}
			if err := dataFileArgs(tv.Variables(), ctype, body, maxBodyParts); err != nil {
				return Verdict{}, fmt.Errorf("waf: request body: %w", err)
			}
		}
		rbr, err := tx.RequestBodyReader()
		if err != nil {
			return Verdict{}, fmt.Errorf("waf: request body: %w", err)
		}
		r.Body = readCloser{io.MultiReader(rbr, r.Body), r.Body}
	}
	// Phase 2 runs on one thread so that the budget reads the CPU it
	// spends (see threadCPU), when it may be timed at all: without a body,
	// what the inspection pass weighs (argsBytes) is already known, and
	// below budgetFloor the clock is never read. (A goroutine locked to
	// its thread costs the scheduler a thread handoff whenever it is
	// preempted.)
	lock := true
	if tv, ok := tx.(interface {
		Variables() plugintypes.TransactionVariables
	}); ok && !bodied && argsBytes(tv.Variables()) < budgetFloor {
		lock = false
	}
	if lock {
		runtime.LockOSThread()
	}
	_, err := tx.ProcessRequestBody()
	if lock {
		runtime.UnlockOSThread()
	}
	if err != nil {
		return Verdict{}, fmt.Errorf("waf: request body: %w", err)
	}
	return t.verdict(), nil
}

// ResponseInspected reports whether Response will look at anything.
func (t *Tx) ResponseInspected() bool {
	return t.tx != nil && t.tx.IsResponseBodyAccessible()
}

// Response runs phases 3 and 4 over resp, buffering up to the response body
// limit and replacing resp.Body so it can still be sent. A gzip body of an
// inspected type is inspected, and sent, decoded; one in any other content
// coding is an error (see decodeResponse).
func (t *Tx) Response(resp *http.Response) (Verdict, error) {
	if t.err != nil {
		return Verdict{}, t.err
	}
	if !t.ResponseInspected() {
		// The resolver leaves out the markers only the response phases'
		// rules name when no transaction's response may be inspected
		// (idleMarkers): those phases run for inspected responses only.
		return Verdict{}, errors.New("waf: response phases run only for an inspected response (ResponseInspected)")
	}
	tx := t.tx
	ctype, err := responseType(resp)
	if err != nil {
		return Verdict{}, err
	}
	for k, vs := range resp.Header {
		if http.CanonicalHeaderKey(k) == "Content-Type" {
			vs = []string{ctype}
		}
		for _, v := range vs {
			tx.AddResponseHeader(k, v)
		}
	}
	if it := tx.ProcessResponseHeaders(resp.StatusCode, resp.Proto); it != nil {
		return t.verdict(), nil
	}
	if tx.IsResponseBodyAccessible() && tx.IsResponseBodyProcessable() && resp.Body != nil {
		if err := decodeResponse(resp); err != nil {
			return Verdict{}, err
		}
		body := bufio.NewReaderSize(resp.Body, 16)
		if err := checkResponseText(ctype, body); err != nil {
			return Verdict{}, err
		}
		it, _, err := tx.ReadResponseBodyFrom(body)
		if err != nil {
			return Verdict{}, fmt.Errorf("waf: read response body: %w", err)
		}
		if it != nil {
			return t.verdict(), nil
		}
		more, err := body.Peek(1)
		if len(more) > 0 {
			// The rules read the limit's worth and found nothing; the
			// rest would go out unread.
			return Verdict{}, fmt.Errorf("%w: past the response body limit", errResponseUnreadable)
		}
		if err != nil && err != io.EOF {
			return Verdict{}, fmt.Errorf("waf: read response body: %w", err)
		}
		rbr, err := tx.ResponseBodyReader()
		if err != nil {
			return Verdict{}, fmt.Errorf("waf: response body: %w", err)
		}
		resp.Body = readCloser{rbr, resp.Body}
	}
	if _, err := tx.ProcessResponseBody(); err != nil {
		return Verdict{}, fmt.Errorf("waf: response body: %w", err)
	}
	return t.verdict(), nil
}

// Evaluation rules: they sum scores rather than detect anything.
func isEvaluation(id int) bool {
	return (id >= 949000 && id < 950000) || (id >= 959000 && id < 960000) || (id >= 980000 && id < 981000)
}

func (t *Tx) verdict() Verdict {
	var v Verdict
	if it := t.tx.Interruption(); it != nil && it.Action != "allow" && it.Action != "pass" {
		v.Block = true
		v.Detected = true
		v.Status = it.Status
		if v.Status == 0 {
			v.Status = http.StatusForbidden
		}
	}
	if tv, ok := t.tx.(interface {
		Variables() plugintypes.TransactionVariables
	}); ok {
		for _, f := range strings.Fields(first(tv.Variables().TX().Get(txDiscounted))) {
			if id, err := strconv.Atoi(f); err == nil {
				v.Discounted = append(v.Discounted, id)
			}
		}
		if n, err := strconv.Atoi(first(tv.Variables().TX().Get(txStopped))); err == nil {
			v.StoppedAt = n
		}
	}
	refused := false // a bodyRefusal rule's match is reported
	for _, mr := range t.tx.MatchedRules() {
		if l, ok := mr.(interface{ Log() bool }); ok && !l.Log() {
			continue
		}
		id := mr.Rule().ID()
		if slices.Contains(v.Discounted, id) {
			continue
		}
		v.RuleIDs = append(v.RuleIDs, id)
		// CRS scores rather than blocks: a match is a detection only
		// once the evaluation rules find the threshold reached. (Coraza
		// counts "pass" as disruptive, so Disruptive() says nothing here.)
		if id == 949110 || id == 959100 {
			v.Detected = true
		}
		// The first attack rule's match is reported, but that a body
		// could not be taken apart comes before it: that rule alone
		// decides the answer, whatever scored before.
		if refusal := bodyRefusal(id); (v.Variable == "" || refusal && !refused) && !isEvaluation(id) {
			for _, md := range mr.MatchedDatas() {
				v.Variable = md.Variable().Name()
				if md.Key() != "" {
					v.Variable += ":" + md.Key()
				}
				v.Matched = Mask(v.Variable, md.Value())
				v.Message = mr.Message()
				if refusal {
					refused = true
					if why := bodyRefusalReason(mr.Data()); why != "" {
						v.Message += " " + why
					}
				}
				break
			}
		}
	}
	return v
}

// bodyRefusal reports whether rule id refuses a body the WAF could not
// take apart (rules 200002, 200003, 200007).
func bodyRefusal(id int) bool {
	return id == 200002 || id == 200003 || id == 200007
}

// bodyRefusalReason is why a bodyRefusal rule refused, from its logged
// data (the processor's error, or what multipartStrict found), bounded: a
// parser's error may quote the body. (Other rules' logged data quotes
// what matched unmasked; Verdict.Matched holds that, masked.)
func bodyRefusalReason(data string) string {
	const most = 160
	if data == "" {
		return ""
	}
	if len(data) > most {
		data = data[:most] + "…"
	}
	data = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?' // no line breaks or controls into a log line
		}
		return r
	}, strings.ToValidUTF8(data, "?"))
	return "(" + data + ")"
}

type readCloser struct {
	io.Reader
	io.Closer
}

func splitHostPort(s string) (string, int) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return s, 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// trimEmptyParams drops the empty parameters some clients leave after a
// media type ("application/json;"): every parser ignores them, and CRS
// would refuse the header as malformed (920470).
func trimEmptyParams(ct string) string {
	t := strings.TrimRight(ct, "; \t")
	if t == "" {
		return ct
	}
	return t
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
