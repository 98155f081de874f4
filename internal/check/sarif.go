package check

import (
	"fmt"
	"io"
	"strings"
)

// SARIF 2.1.0 output, for code-scanning interfaces. Each result names the
// resource address in its message and as a logical location, and carries
// its reachability path as a code flow.

const sarifSchema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifText          `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	CodeFlows           []sarifCodeFlow    `json:"codeFlows,omitempty"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	// Properties carries the finding's own fix (Finding.Fix), when it has
	// one in place of its rule's help.
	Properties map[string]string `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical `json:"logicalLocations,omitempty"`
	Message          *sarifText     `json:"message,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifLogical struct {
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind,omitempty"`
}

type sarifCodeFlow struct {
	Message     *sarifText        `json:"message,omitempty"`
	ThreadFlows []sarifThreadFlow `json:"threadFlows"`
}

type sarifThreadFlow struct {
	Locations []sarifFlowLocation `json:"locations"`
}

type sarifFlowLocation struct {
	Location sarifLocation `json:"location"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Justification string `json:"justification"`
}

func sarifLevel(s Severity) string {
	switch {
	case s >= High:
		return "error"
	case s == Medium:
		return "warning"
	}
	return "note"
}

// securitySeverity is the CVSS-like score code-scanning UIs sort by.
func securitySeverity(s Severity) string {
	return [...]string{"0.0", "3.0", "5.5", "8.0", "9.5"}[s]
}

func ruleName(title string) string {
	var b strings.Builder
	for _, w := range strings.FieldsFunc(title, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// WriteSARIF writes the report as a SARIF 2.1.0 log.
func WriteSARIF(w io.Writer, rep *Report) error {
	rules := Rules()
	index := map[string]int{}
	drv := sarifDriver{Name: "moat check"}
	for i, r := range rules {
		index[r.ID] = i
		drv.Rules = append(drv.Rules, sarifRule{ID: r.ID, Name: ruleName(r.Title),
			ShortDescription: sarifText{r.Title}, FullDescription: sarifText{r.Description},
			Help: sarifText{r.Remediation}, DefaultConfiguration: sarifConfig{sarifLevel(r.Severity)},
			Properties: map[string]any{"security-severity": securitySeverity(r.Severity), "tags": []string{"security"}}})
	}
	run := sarifRun{Tool: sarifTool{Driver: drv}, Results: []sarifResult{}}
	for _, f := range rep.Findings {
		msg := f.Message
		if f.Address != "" {
			msg = f.Address + ": " + msg
		}
		loc := sarifLocation{}
		if f.File != "" {
			loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: f.File}}
			if f.Line > 0 {
				loc.PhysicalLocation.Region = &sarifRegion{StartLine: f.Line}
			}
		}
		if f.Address != "" {
			loc.LogicalLocations = []sarifLogical{{FullyQualifiedName: f.Address, Kind: "resource"}}
		}
		res := sarifResult{RuleID: f.RuleID, RuleIndex: index[f.RuleID], Level: sarifLevel(f.Severity),
			Message: sarifText{msg}, Locations: []sarifLocation{loc},
			PartialFingerprints: map[string]string{"moatFinding/v1": fmt.Sprintf("%s@%s", f.RuleID, f.Address)}}
		flow := func(path []Hop) sarifThreadFlow {
			var tf sarifThreadFlow
			for _, h := range path {
				what := h.Kind
				if h.Blocked {
					what = "stopped at " + what
				}
				l := sarifLocation{Message: &sarifText{what + ": " + h.Detail}}
				if h.Addr != "" {
					l.LogicalLocations = []sarifLogical{{FullyQualifiedName: h.Addr}}
				}
				tf.Locations = append(tf.Locations, sarifFlowLocation{Location: l})
			}
			return tf
		}
		switch {
		case len(f.Paths) > 1:
			// One code flow per set of ports reached on the same path.
			for _, pp := range f.Paths {
				res.CodeFlows = append(res.CodeFlows, sarifCodeFlow{Message: &sarifText{pp.Ports}, ThreadFlows: []sarifThreadFlow{flow(pp.Path)}})
			}
		case len(f.Path) > 0:
			res.CodeFlows = []sarifCodeFlow{{ThreadFlows: []sarifThreadFlow{flow(f.Path)}}}
		}
		if f.Fix != "" {
			res.Properties = map[string]string{"fix": f.Fix}
		}
		if f.Suppressed != "" {
			res.Suppressions = []sarifSuppression{{Kind: "inSource", Justification: f.Suppressed}}
		}
		run.Results = append(run.Results, res)
	}
	return encodeJSON(w, sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}
