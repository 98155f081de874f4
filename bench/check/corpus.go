package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"moat/internal/check"
)

// A corpus is a folder of per-rule fixtures in the layout KICS publishes for
// its Terraform queries: QUERY/test/positive*.tf, negative*.tf and
// positive_expected_result.json (the file and line of every result the query
// must report). The harness checks every fixture file on its own, as a root
// module, with check.Run, and compares the findings of the moat rules that
// answer the query with the expected results, block by block: a result is
// found when a finding of a mapped rule lies in the top-level block (resource,
// module, data) that holds the expected line.

// corpusQuery maps one query of the corpus to the moat rules that answer it.
type corpusQuery struct {
	Query  string
	Family string
	Rules  []string
	// Port, when set, narrows the query to one TCP port: only findings of
	// Rules whose message names a TCP range holding it count (the query
	// is about SSH or RDP; a world-open database port in its negative
	// fixture is not its concern).
	Port int
	// Says, when set, narrows the query to findings whose message says it
	// (a query about ciphers is not about protocol versions).
	Says string
}

// corpusMap is the mapping from KICS query names (their folder names) to
// moat rule IDs, by family. Only the moat rules whose scope is the query's
// are named, so that a negative fixture of the query (which says only that
// the query must not fire there) can count a finding as a false alarm.
var corpusMap = []corpusQuery{
	{Query: "sensitive_port_is_exposed_to_entire_network", Family: famWorldOpen, Rules: []string{check.RuleWorldOpen}},
	{Query: "unknown_port_exposed_to_internet", Family: famWorldOpen, Rules: []string{check.RuleWorldOpenOther}},
	{Query: "unrestricted_security_group_ingress", Family: famWorldOpen, Rules: []string{check.RuleWorldOpen, check.RuleWorldOpenOther}},
	{Query: "remote_desktop_port_open_to_internet", Family: famWorldOpen, Rules: []string{check.RuleWorldOpen}, Port: 3389},
	{Query: "security_group_with_unrestricted_access_to_ssh", Family: famWorldOpen, Rules: []string{check.RuleWorldOpen}, Port: 22},
	{Query: "db_instance_publicly_accessible", Family: famDataStores, Rules: publicStore},
	{Query: "rds_db_instance_publicly_accessible", Family: famDataStores, Rules: publicStore},
	{Query: "rds_associated_with_public_subnet", Family: famDataStores, Rules: publicStore},
	{Query: "redshift_publicly_accessible", Family: famDataStores, Rules: publicStore},
	{Query: "msk_broker_is_publicly_accessible", Family: famDataStores, Rules: publicStore},
	{Query: "amazon_dms_replication_instance_is_publicly_accessible", Family: famDataStores, Rules: publicStore},
	{Query: "neptune_cluster_instance_is_publicly_accessible", Family: famDataStores, Rules: publicStore},
	{Query: "ec2_instance_has_public_ip", Family: famPublicIP, Rules: []string{check.RulePublicIP}},
	{Query: "vpc_subnet_assigns_public_ip", Family: famPublicIP, Rules: []string{check.RulePublicIP}},
	{Query: "alb_listening_on_http", Family: famListeners, Rules: []string{check.RuleHTTPNoRedirect, check.RulePlainListener}},
	{Query: "alb_protocol_is_http", Family: famListeners, Rules: []string{check.RuleHTTPNoRedirect, check.RulePlainListener}},
	{Query: "elb_using_insecure_protocols", Family: famListeners, Rules: []string{check.RuleWeakTLS}},
	{Query: "elb_using_weak_ciphers", Family: famListeners, Rules: []string{check.RuleWeakTLS}, Says: "cipher"},
	{Query: "efs_not_encrypted", Family: famEncryption, Rules: unencrypted},
	{Query: "ebs_volume_encryption_disabled", Family: famEncryption, Rules: unencrypted},
	{Query: "block_device_is_not_encrypted", Family: famEncryption, Rules: unencrypted},
	{Query: "launch_configuration_is_not_encrypted", Family: famEncryption, Rules: unencrypted},
	{Query: "db_instance_storage_not_encrypted", Family: famEncryption, Rules: unencrypted},
	{Query: "rds_storage_not_encrypted", Family: famEncryption, Rules: unencrypted},
	{Query: "aurora_with_disabled_at_rest_encryption", Family: famEncryption, Rules: unencrypted},
	{Query: "docdb_cluster_not_encrypted", Family: famEncryption, Rules: unencrypted},
	{Query: "redshift_not_encrypted", Family: famEncryption, Rules: unencrypted},
	{Query: "elasticache_replication_group_not_encrypted_at_rest", Family: famEncryption, Rules: unencrypted},
	{Query: "elasticsearch_not_encrypted_at_rest", Family: famEncryption, Rules: unencrypted},
	{Query: "kinesis_not_encrypted_with_kms", Family: famEncryption, Rules: unencrypted},
	{Query: "sqs_with_sse_disabled", Family: famEncryption, Rules: unencrypted},
	{Query: "sns_topic_not_encrypted", Family: famEncryption, Rules: unencrypted},
	{Query: "efs_without_kms", Family: famCMK, Rules: noCMK},
	{Query: "docdb_cluster_without_kms", Family: famCMK, Rules: noCMK},
	{Query: "dynamodb_table_not_encrypted", Family: famCMK, Rules: noCMK},
	{Query: "s3_bucket_sse_disabled", Family: famCMK, Rules: noCMK},
	{Query: "docdb_cluster_encrypted_with_aws_managed_key", Family: famCMK, Rules: noCMK},
	{Query: "sns_topic_encrypted_with_aws_managed_key", Family: famCMK, Rules: noCMK},
	{Query: "cloudwatch_log_group_not_encrypted", Family: famCMK, Rules: noCMK},
	{Query: "vpc_default_security_group_accepts_all_traffic", Family: famDefaultSG, Rules: []string{check.RuleDefaultSGOpen}},
	{Query: "vpc_flowlogs_disabled", Family: famFlowLogs, Rules: []string{check.RuleNoFlowLogs}},
	{Query: "cloudtrail_multi_region_disabled", Family: famTrail, Rules: []string{check.RuleTrailRegions}},
	{Query: "cloudtrail_log_file_validation_disabled", Family: famTrail, Rules: []string{check.RuleTrailValidation}},
	{Query: "cloudtrail_log_files_not_encrypted_with_kms", Family: famTrail, Rules: []string{check.RuleTrailKMS}},
	{Query: "cloudtrail_not_integrated_with_cloudwatch", Family: famTrail, Rules: []string{check.RuleTrailCloudWatch}},
	{Query: "cloudtrail_logging_disabled", Family: famTrail, Rules: []string{check.RuleCloudTrail}},
	// KICS has no IMDS query with fixtures; this one is moat's own
	// (testdata/imds, written here).
	{Query: "imdsv2_not_required", Family: famIMDS, Rules: []string{check.RuleIMDSv1}},
}

// Families, in the order the tables list them.
const (
	famWorldOpen  = "world-open ingress"
	famDataStores = "public data stores"
	famPublicIP   = "public IPs"
	famListeners  = "listeners without TLS"
	famEncryption = "encryption at rest"
	famCMK        = "customer-managed keys"
	famDefaultSG  = "default security group"
	famFlowLogs   = "flow logs"
	famTrail      = "CloudTrail"
	famIMDS       = "IMDSv2"
)

var (
	publicStore = []string{check.RuleDataTierPublic, check.RuleExposedPort}
	unencrypted = []string{check.RuleUnencrypted}
	// A resource without encryption at rest has no customer-managed key
	// either: AWS-ENC-001 answers a customer-managed-key query too.
	noCMK = []string{check.RuleNoCMK, check.RuleUnencrypted}
)

// corpusScore counts one query's or family's results.
type corpusScore struct {
	TP, FP, FN int
	// Of the false alarms and misses, those a documented disagreement
	// explains (see disagreements.go).
	DisputedFP, DisputedFN int
	// Files checked; Unscored: positive files without expected results (the
	// fixture and its expectations come from different versions), files
	// that do not parse, and expected lines outside every block.
	Files, Unscored int
}

func (s *corpusScore) add(o corpusScore) {
	s.TP += o.TP
	s.FP += o.FP
	s.FN += o.FN
	s.DisputedFP += o.DisputedFP
	s.DisputedFN += o.DisputedFN
	s.Files += o.Files
	s.Unscored += o.Unscored
}

func ratio(a, b int) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

// runCorpus scores every mapped query found under dir and writes a table by
// query and by family to w; with verbose, every miss and false alarm too.
// It returns the scores by family.
//
// With modules set, registry sources terraform-aws-modules/NAME/aws are
// resolved to modules/terraform-aws-NAME, as terraform init would download
// them (at the version that folder holds), and a finding inside a module
// instance counts for the module block that calls it.
func runCorpus(dir, modules string, w io.Writer, verbose bool) (map[string]corpusScore, error) {
	used, unresolved = map[string]bool{}, map[string]bool{}
	fams := map[string]corpusScore{}
	var order []string
	queries := 0
	fmt.Fprintf(w, "%-56s %-22s %4s %4s %4s %6s %9s %7s\n", "query", "family", "TP", "FP", "FN", "files", "unscored", "recall")
	for _, q := range corpusMap {
		qdir := filepath.Join(dir, q.Query, "test")
		if _, err := os.Stat(qdir); err != nil {
			continue
		}
		queries++
		s, notes, err := scoreQuery(qdir, q, modules)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.Query, err)
		}
		fmt.Fprintf(w, "%-56s %-22s %4d %4d %4d %6d %9d %7s\n", q.Query, q.Family, s.TP, s.FP, s.FN, s.Files, s.Unscored, ratio(s.TP, s.TP+s.FN))
		if verbose {
			for _, n := range notes {
				fmt.Fprintf(w, "    %s\n", n)
			}
		}
		if _, ok := fams[q.Family]; !ok {
			order = append(order, q.Family)
		}
		f := fams[q.Family]
		f.add(s)
		fams[q.Family] = f
	}
	if queries == 0 {
		return nil, fmt.Errorf("no mapped query folder (QUERY/test) under %s", dir)
	}
	fmt.Fprintf(w, "\n%-22s %4s %4s %4s %10s %7s   %s\n", "family", "TP", "FP", "FN", "precision", "recall", "disagreements set aside: FP FN precision recall")
	var all corpusScore
	line := func(name string, s corpusScore) {
		fmt.Fprintf(w, "%-22s %4d %4d %4d %10s %7s   %4d %4d %10s %7s\n", name, s.TP, s.FP, s.FN,
			ratio(s.TP, s.TP+s.FP), ratio(s.TP, s.TP+s.FN), s.FP-s.DisputedFP, s.FN-s.DisputedFN,
			ratio(s.TP, s.TP+s.FP-s.DisputedFP), ratio(s.TP, s.TP+s.FN-s.DisputedFN))
	}
	for _, f := range order {
		all.add(fams[f])
		line(f, fams[f])
	}
	line("all", all)
	present := map[string]bool{}
	for _, q := range corpusMap {
		if _, err := os.Stat(filepath.Join(dir, q.Query, "test")); err == nil {
			present[q.Query] = true
		}
	}
	fmt.Fprintf(w, "\n%d queries, %d fixture files scored, %d expected results scored (one per block), %d unscored, %d documented disagreements met\n",
		queries, all.Files, all.TP+all.FN, all.Unscored, all.DisputedFP+all.DisputedFN)
	for _, d := range disagreements {
		if d.Module && unresolved[d.Query+" "+d.File] {
			continue // met only with the module the fixture calls
		}
		if present[d.Query] && !used[d.Query+" "+d.File+" "+d.Block] {
			fmt.Fprintf(w, "stale disagreement (the case did not occur): %s %s %s\n", d.Query, d.File, d.Block)
		}
	}
	return fams, nil
}

type expected struct {
	Line      int    `json:"line"`
	File      string `json:"filename"`
	FileName  string `json:"fileName"` // older fixtures spell it so
	SearchKey string `json:"searchKey"`
}

// tcpRange matches the port ranges findings name: "tcp 22", "tcp 0-65535",
// and the whole protocol: "every tcp service port", "every tcp and udp
// service port".
var tcpRange = regexp.MustCompile(`\btcp (\d+)(?:-(\d+))?|\bevery tcp\b`)

// namesTCPPort reports whether a finding's message names a TCP range (or all
// traffic) that holds port.
func namesTCPPort(msg string, port int) bool {
	for _, m := range tcpRange.FindAllStringSubmatch(msg, -1) {
		if m[1] == "" {
			return true
		}
		lo, _ := strconv.Atoi(m[1])
		hi := lo
		if m[2] != "" {
			hi, _ = strconv.Atoi(m[2])
		}
		if lo <= port && port <= hi {
			return true
		}
	}
	return false
}

// searchKeyBlock names the block an expected result's searchKey starts
// with: TYPE[NAME]… is resource TYPE.NAME, module[NAME]… is module.NAME.
var searchKeyBlock = regexp.MustCompile(`^([a-z0-9_]+)\[([^\]]+)\]`)

// used records the documented disagreements a run met, by "query file
// block", so that stale entries are reported; unresolved, by "query file",
// the fixtures that call a registry module the run could not give them, so
// that a disagreement met only with the module is not reported stale
// without it.
var used, unresolved = map[string]bool{}, map[string]bool{}

// renamed lists fixture files the corpus holds under an older name than the
// one their query's expected results use (KICS renamed positive.tf to
// positive1.tf when a query got a second positive file). A file is read
// under the new name only when the corpus has no file of that name; the
// README names each case and why its lines fit.
var renamed = map[string]map[string]string{
	// Expected lines 17 (resource "aws_instance" "web2") and 28
	// (associate_public_ip_address = true of web3) are this file's.
	"ec2_instance_has_public_ip": {"positive.tf": "positive1.tf"},
}

// scoreQuery checks every fixture of one query.
func scoreQuery(qdir string, q corpusQuery, modules string) (corpusScore, []string, error) {
	var s corpusScore
	var notes []string
	want := map[string][]int{}    // fixture file → expected lines
	keys := map[string][]string{} // fixture file → the blocks searchKeys name
	data, err := os.ReadFile(filepath.Join(qdir, "positive_expected_result.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return s, nil, err
	default:
		var exp []expected
		if err := json.Unmarshal(data, &exp); err != nil {
			return s, nil, fmt.Errorf("positive_expected_result.json: %w", err)
		}
		for _, e := range exp {
			f := e.File
			if f == "" {
				f = e.FileName
			}
			if f == "" {
				f = "positive.tf" // the oldest fixtures had one positive file
			}
			want[f] = append(want[f], e.Line)
			key := ""
			if m := searchKeyBlock.FindStringSubmatch(e.SearchKey); m != nil {
				// Newer fixtures write the name as {{NAME}}.
				key = m[1] + "." + strings.TrimSuffix(strings.TrimPrefix(m[2], "{{"), "}}")
			}
			keys[f] = append(keys[f], key)
		}
	}
	ents, err := os.ReadDir(qdir)
	if err != nil {
		return s, nil, err
	}
	for _, f := range sortedKeys(func() map[string]bool {
		m := map[string]bool{}
		for f := range want {
			m[f] = true
		}
		return m
	}()) {
		if _, err := os.Stat(filepath.Join(qdir, f)); err != nil && !isRenamed(qdir, q.Query, f) {
			s.Unscored += len(want[f])
			notes = append(notes, fmt.Sprintf("%s: unscored (%d expected results; the file is not in the corpus)", f, len(want[f])))
		}
	}
	rules := map[string]bool{}
	for _, r := range q.Rules {
		rules[r] = true
	}
	for _, e := range ents {
		file, name := e.Name(), e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".tf") {
			continue
		}
		if n := renamed[q.Query][name]; n != "" {
			if _, err := os.Stat(filepath.Join(qdir, n)); errors.Is(err, os.ErrNotExist) {
				name = n
			}
		}
		positive := strings.HasPrefix(name, "positive")
		if !positive && !strings.HasPrefix(name, "negative") {
			continue
		}
		if positive && len(want[name]) == 0 {
			s.Unscored++
			notes = append(notes, name+": unscored (no expected results name it)")
			continue
		}
		src, err := os.ReadFile(filepath.Join(qdir, file))
		if err != nil {
			return s, nil, err
		}
		blocks, err := topBlocks(name, src)
		if err != nil {
			s.Unscored++
			notes = append(notes, fmt.Sprintf("%s: unscored (%v)", name, err))
			continue
		}
		truth := map[string]bool{}
		placed := true
		for i, l := range want[name] {
			// The block the searchKey names, when the file has it: the
			// expected line may come from another version of the file.
			b := ""
			if k := keys[name][i]; k != "" && hasBlock(blocks, k) {
				b = k
			} else {
				b = blockAt(blocks, l)
			}
			if b == "" {
				placed = false
				notes = append(notes, fmt.Sprintf("%s:%d: expected line outside every block", name, l))
				continue
			}
			truth[b] = true
		}
		if !placed {
			// The expectations are of another version of the file: what
			// the others name cannot be trusted either.
			s.Unscored += len(want[name])
			notes = append(notes, fmt.Sprintf("%s: unscored (%d expected results; some do not fit this version of the file)", name, len(want[name])))
			continue
		}
		got, msgs, err := checkFixture(name, src, blocks, rules, q, modules)
		if err != nil {
			s.Unscored++
			notes = append(notes, fmt.Sprintf("%s: unscored (moat check: %v)", name, err))
			continue
		}
		// A finding at a resource that configures an expected one (names
		// it: an aws_s3_bucket_server_side_encryption_configuration its
		// bucket, a rule resource its group) answers that one.
		for _, b := range sortedKeys(got) {
			if truth[b] {
				continue
			}
			for _, a := range sortedKeys(truth) {
				if !got[a] && configures(blocks, b, a) {
					got[a] = true
					delete(got, b)
					break
				}
			}
		}
		s.Files++
		for _, b := range sortedKeys(truth) {
			if got[b] {
				s.TP++
				continue
			}
			s.FN++
			note := fmt.Sprintf("%s %s: missed", name, b)
			if why := disputed(q.Query, name, b, false); why != "" {
				s.DisputedFN++
				note += " (disagreement: " + why + ")"
				used[q.Query+" "+name+" "+b] = true
			}
			notes = append(notes, note)
		}
		for _, b := range sortedKeys(got) {
			if truth[b] {
				continue
			}
			s.FP++
			note := fmt.Sprintf("%s %s: false alarm: %s", name, b, msgs[b])
			if why := disputed(q.Query, name, b, true); why != "" {
				s.DisputedFP++
				note += " (disagreement: " + why + ")"
				used[q.Query+" "+name+" "+b] = true
			}
			notes = append(notes, note)
		}
	}
	return s, notes, nil
}

// isRenamed reports whether the corpus holds file f of query q under its
// older name (see renamed).
func isRenamed(qdir, q, f string) bool {
	for old, n := range renamed[q] {
		if n == f {
			if _, err := os.Stat(filepath.Join(qdir, old)); err == nil {
				return true
			}
		}
	}
	return false
}

// checkFixture runs moat check on one fixture file alone and returns the
// blocks holding a finding of rules, with one message each.
func checkFixture(name string, src []byte, blocks []block, rules map[string]bool, q corpusQuery, modules string) (map[string]bool, map[string]string, error) {
	dir, err := os.MkdirTemp("", "moat-corpus")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
		return nil, nil, err
	}
	missing, err := initModules(dir, name, src, modules)
	if err != nil {
		return nil, nil, err
	}
	if missing {
		unresolved[q.Query+" "+name] = true
	}
	// The modules are links into the mirror, outside the directory.
	rep, err := check.Run(context.Background(), check.Config{Paths: []string{dir}, Root: string(filepath.Separator)})
	if err != nil {
		return nil, nil, err
	}
	got, msgs := map[string]bool{}, map[string]string{}
	for _, f := range rep.Findings {
		if !rules[f.RuleID] || filepath.Base(f.File) != name && !strings.HasPrefix(f.Address, "module.") {
			continue
		}
		if q.Port != 0 && !namesTCPPort(f.Message, q.Port) || !strings.Contains(f.Message, q.Says) {
			continue
		}
		b := blockAt(blocks, f.Line)
		if mod, _, ok := strings.Cut(strings.TrimPrefix(f.Address, "module."), "."); ok && strings.HasPrefix(f.Address, "module.") {
			b = "module." + strings.Split(mod, "[")[0]
		}
		if b != "" {
			got[b] = true
			if msgs[b] == "" {
				msgs[b] = f.RuleID + " " + f.Message
			}
		}
	}
	return got, msgs, nil
}

type block struct {
	addr       string
	start, end int
	text       string
}

// topBlocks lists the top-level blocks of a Terraform file with their lines.
func topBlocks(name string, src []byte) ([]block, error) {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	var out []block
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		addr := strings.Join(append([]string{b.Type}, b.Labels...), ".")
		if b.Type == "resource" {
			addr = strings.Join(b.Labels, ".")
		}
		r := b.Range()
		out = append(out, block{addr, r.Start.Line, r.End.Line, string(src[r.Start.Byte:r.End.Byte])})
	}
	return out, nil
}

func blockAt(bs []block, line int) string {
	for _, b := range bs {
		if b.start <= line && line <= b.end {
			return b.addr
		}
	}
	return ""
}

// configures reports whether block b names block a (a resource address or
// module.NAME) in its body.
func configures(bs []block, b, a string) bool {
	for _, x := range bs {
		if x.addr == b {
			return regexp.MustCompile(`(^|[^\w.-])` + regexp.QuoteMeta(a) + `([^\w-]|$)`).MatchString(x.text)
		}
	}
	return false
}

func hasBlock(bs []block, addr string) bool {
	for _, b := range bs {
		if b.addr == addr {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// initModules does what terraform init does for the registry modules of
// the terraform-aws-modules project that a fixture calls: it links each
// module call, under .terraform/modules, to the release the call's version
// constraint selects (see resolveModule), and writes the manifest. A second
// call of the same name is left unlinked: Terraform rejects the file
// ("Duplicate module call"), and so does moat check. missing reports a
// call that nothing in modules fits.
func initModules(dir, name string, src []byte, modules string) (missing bool, err error) {
	f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if diags.HasErrors() {
		return false, diags
	}
	type entry struct{ Key, Source, Dir string }
	man := struct{ Modules []entry }{Modules: []entry{{Key: "", Source: "", Dir: "."}}}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "module" || len(b.Labels) != 1 {
			continue
		}
		a := b.Body.Attributes["source"]
		if a == nil {
			continue
		}
		v, d := a.Expr.Value(nil)
		if d.HasErrors() || !v.Type().Equals(cty.String) {
			continue
		}
		parts := strings.Split(v.AsString(), "/")
		if len(parts) != 3 || parts[0] != "terraform-aws-modules" || parts[2] != "aws" {
			continue
		}
		constraint := ""
		if a := b.Body.Attributes["version"]; a != nil {
			if c, d := a.Expr.Value(nil); !d.HasErrors() && c.Type().Equals(cty.String) {
				constraint = c.AsString()
			}
		}
		target, err := resolveModule(modules, "terraform-aws-"+parts[1], constraint)
		if err != nil {
			return false, err
		}
		link := filepath.Join(dir, ".terraform", "modules", b.Labels[0])
		if target == "" {
			missing = true
			continue // not in the mirror: left for moat check to note
		}
		if _, err := os.Lstat(link); err == nil {
			continue // a duplicate call
		}
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			return false, err
		}
		if err := os.Symlink(target, link); err != nil {
			return false, err
		}
		man.Modules = append(man.Modules, entry{b.Labels[0], "registry.terraform.io/" + v.AsString(), filepath.ToSlash(filepath.Join(".terraform", "modules", b.Labels[0]))})
	}
	if len(man.Modules) == 1 {
		return missing, nil
	}
	data, err := json.Marshal(man)
	if err != nil {
		return false, err
	}
	return missing, os.WriteFile(filepath.Join(dir, ".terraform", "modules", "modules.json"), data, 0o644)
}

// resolveModule chooses the folder terraform init would download for a
// registry module called with a version constraint. Each folder of the list
// modules (filepath.SplitList) may hold releases, NAME@X.Y.Z, and a mirror
// of one commit, NAME. As Terraform does, the newest release that meets the
// constraint wins (constraints read with hashicorp/go-version, the library
// Terraform reads them with). With no release that meets it the first mirror
// is taken, whatever the call pins; with no constraint, the first mirror (a
// mirror is of a recent commit), else the newest release. "" when nothing
// fits: moat check then notes that terraform init has not run.
func resolveModule(modules, name, constraint string) (string, error) {
	var cons version.Constraints
	if constraint != "" {
		c, err := version.NewConstraint(constraint)
		if err != nil {
			return "", fmt.Errorf("module %s: version %q: %w", name, constraint, err)
		}
		cons = c
	}
	var best *version.Version
	bestDir, mirror := "", ""
	for _, m := range filepath.SplitList(modules) {
		releases, err := filepath.Glob(filepath.Join(m, name+"@*"))
		if err != nil {
			return "", err
		}
		for _, r := range releases {
			v, err := version.NewVersion(strings.TrimPrefix(filepath.Base(r), name+"@"))
			if err != nil || cons != nil && !cons.Check(v) || best != nil && !v.GreaterThan(best) {
				continue
			}
			best, bestDir = v, r
		}
		if t := filepath.Join(m, name); mirror == "" {
			if _, err := os.Stat(t); err == nil {
				mirror = t
			}
		}
	}
	switch {
	case mirror != "" && (cons == nil || bestDir == ""):
		return filepath.Abs(mirror)
	case bestDir != "":
		return filepath.Abs(bestDir)
	}
	return "", nil
}
