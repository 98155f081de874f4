package tf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// maxNesting bounds how deeply a file's expressions and blocks may nest,
// counted from its tokens before it is parsed: HCL's parser and evaluator
// recurse once per level, and a file nested millions deep ((((…)))),
// !!!!x, 1+1+…+1, "${"${…}"}", x {x {…}}) overflows the stack, which
// ends the process. Real configurations nest a few dozen deep.
const maxNesting = 4096

// maxMeld bounds the bytes HCL's parser copies to join a string's
// pieces: it joins them one at a time, each join copying what came
// before, so a heredoc of 20,000 lines took a minute to parse. A heredoc
// of a thousand 80-character lines copies 40 MB.
const maxMeld = 1 << 30

// maxTokens bounds the tokens a file of the native syntax may hold,
// counted from its bytes before it is lexed: HCL's lexer holds every token
// of a file at once, about 200 bytes each with its slice's growth, so four
// megabytes of "(" took 1.4 GB. Real files hold a few thousand tokens
// (published modules' largest, a few hundred kilobytes, under 100,000).
const maxTokens = 1 << 20

// tokenBound returns an upper bound on the tokens HCL's lexer makes of src
// (each byte that is not a letter, digit, underscore or blank may be a
// token of its own, and each run of those that are one), and the line on
// which it passes maxTokens, or 0.
func tokenBound(src []byte) (n, line int) {
	line = 1
	inWord := false
	for _, c := range src {
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			inWord = false
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_':
			if !inWord {
				n++
			}
			inWord = true
		default:
			n++
			inWord = false
			if c == '\n' {
				line++
			}
		}
		if n > maxTokens {
			return n, line
		}
	}
	return n, 0
}

// checkNesting refuses src (a .tf, .tfvars or template file; a JSON file
// when isJSON) nested deeper than maxNesting, naming the file and line
// where the bound is passed.
func checkNesting(src []byte, name string, isJSON, template bool) error {
	if isJSON {
		return jsonNesting(src, name)
	}
	if _, line := tokenBound(src); line > 0 {
		return fmt.Errorf("tf: %s:%d: more than %d tokens in one file", name, line, maxTokens)
	}
	var toks hclsyntax.Tokens
	if template {
		toks, _ = hclsyntax.LexTemplate(src, name, hcl.InitialPos)
	} else {
		toks, _ = hclsyntax.LexConfig(src, name, hcl.InitialPos)
	}
	if line, why := tokenNesting(toks, 0); line > 0 {
		return fmt.Errorf("tf: %s:%d: %s", name, line, why)
	}
	return nil
}

// tokenNesting returns the line at which the tokens, starting base levels
// deep, nest past maxNesting or join a string past maxMeld, and which, or
// 0. A level is an open bracket, brace,
// parenthesis, quote, heredoc, interpolation or template directive, and
// each operator, attribute step or index within one expression of one
// (each makes the syntax tree one deeper); a comma, and a newline in a
// body or object, starts another expression.
func tokenNesting(toks hclsyntax.Tokens, base int) (int, string) {
	type frame struct {
		open hclsyntax.TokenType
		ops  int
	}
	stack := []frame{{open: hclsyntax.TokenOBrace}}
	depth := base // len(stack) - 1 + every frame's ops + directives
	directives := 0
	run, meld := 0, 0 // the bytes of the string pieces in a row; what joining them copies
	closes := map[hclsyntax.TokenType]hclsyntax.TokenType{
		hclsyntax.TokenCBrace: hclsyntax.TokenOBrace, hclsyntax.TokenCBrack: hclsyntax.TokenOBrack,
		hclsyntax.TokenCParen: hclsyntax.TokenOParen, hclsyntax.TokenCQuote: hclsyntax.TokenOQuote,
		hclsyntax.TokenCHeredoc: hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateSeqEnd: hclsyntax.TokenTemplateInterp,
	}
	for i, t := range toks {
		top := &stack[len(stack)-1]
		if t.Type == hclsyntax.TokenStringLit || t.Type == hclsyntax.TokenQuotedLit {
			run += len(t.Bytes)
			if meld += run; meld > maxMeld {
				return t.Range.Start.Line, "a string or heredoc of too many lines or pieces to read"
			}
		} else {
			run = 0
		}
		switch t.Type {
		case hclsyntax.TokenOBrack:
			top.ops++ // an index makes its collection one deeper
			depth++
			fallthrough
		case hclsyntax.TokenOBrace, hclsyntax.TokenOParen, hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			open := t.Type
			if open == hclsyntax.TokenTemplateControl {
				open = hclsyntax.TokenTemplateInterp
				if i+1 < len(toks) && toks[i+1].Type == hclsyntax.TokenIdent {
					switch string(toks[i+1].Bytes) {
					case "if", "for":
						directives++
						depth++
					case "endif", "endfor":
						if directives > 0 {
							directives--
							depth--
						}
					}
				}
			}
			stack = append(stack, frame{open: open})
			depth++
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote,
			hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			// A closer that does not match is a syntax error; it closes
			// nothing here, so that it cannot hide what is open.
			if len(stack) > 1 && top.open == closes[t.Type] {
				depth -= 1 + top.ops
				stack = stack[:len(stack)-1]
			}
		case hclsyntax.TokenComma:
			depth -= top.ops
			top.ops = 0
		case hclsyntax.TokenNewline:
			if top.open == hclsyntax.TokenOBrace {
				depth -= top.ops
				top.ops = 0
			}
		case hclsyntax.TokenPlus, hclsyntax.TokenMinus, hclsyntax.TokenStar, hclsyntax.TokenSlash, hclsyntax.TokenPercent,
			hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq,
			hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq, hclsyntax.TokenAnd, hclsyntax.TokenOr,
			hclsyntax.TokenBang, hclsyntax.TokenDot, hclsyntax.TokenQuestion, hclsyntax.TokenColon,
			hclsyntax.TokenFatArrow, hclsyntax.TokenEllipsis, hclsyntax.TokenDoubleColon:
			top.ops++
			depth++
		}
		if depth > maxNesting {
			return t.Range.Start.Line, fmt.Sprintf("expressions or blocks nested deeper than %d", maxNesting)
		}
	}
	return 0, ""
}

// jsonNesting bounds a JSON file's nesting, and that of the template each
// of its strings is, as checkNesting does.
func jsonNesting(src []byte, name string) error {
	dec := json.NewDecoder(bytes.NewReader(src))
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// The parser reports the syntax error with its line.
			return nil
		}
		line := func() int { return 1 + bytes.Count(src[:dec.InputOffset()], []byte("\n")) }
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '{' || tok == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			toks, _ := hclsyntax.LexTemplate([]byte(tok), name, hcl.InitialPos)
			if l, why := tokenNesting(toks, depth); l > 0 {
				return fmt.Errorf("tf: %s:%d: %s", name, line(), why)
			}
		}
		if depth > maxNesting {
			return fmt.Errorf("tf: %s:%d: objects or arrays nested deeper than %d", name, line(), maxNesting)
		}
	}
}
