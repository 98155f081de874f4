package main

import "strings"

// benignText is one generated benign value: what users of forums, wikis,
// support desks, code review tools and JSON APIs send every day, and what
// trips WAFs that match words instead of reading context.
type benignText struct {
	kind     string
	text     string
	json     bool // a JSON document, sent as the body of a JSON carrier
	document bool // a document (markup, code, JSON): see documentCarriers
}

// The pieces are written for this harness; benignTexts combines them so
// that each kind has a few hundred distinct values.
var (
	proseSQL = []string{
		"Please select the best option from the list and drop me a line",
		"The union members will update the schedule where needed",
		"Insert the tab into slot A, then delete the old label",
		"We had to order by date because the table was too long",
		"Is it true or false that 1 = 1 in every logic class?",
		"Select all that apply: sleep, exercise, or diet",
		"Join us for dinner and drop by after the show",
		"I'd like to cancel order #4471 - it's a duplicate, sorry",
		"Where can I find the \"union\" station timetable?",
		"Group by size, then sort from smallest to largest",
		"O'Brien's table (the one by the window) is free after 8",
		"Having trouble with the login form; the password reset doesn't arrive",
	}
	proseShell = []string{
		"Bash away at the bag, then cat nap for an hour",
		"Find the nearest shop where you can echo your concerns",
		"I ran `npm install` and then `npm test` | everything passed",
		"Set PATH=/usr/local/bin:$PATH in your profile & restart the terminal",
		"Our kill ratio in the last game was 3:1; time to wget better",
		"Use ls -la to see hidden files, or dir /a on Windows",
		"Copy the file with cp, then chmod 644 it; ping me if it fails",
		"The sleep study runs from 10pm to 6am; bring your id and a sh*rt",
		"Whoami? Just a curious dev who likes to curl up with a book",
		"Type 'exit' to leave the shell, or press Ctrl+D",
	}
	richText = []string{
		`<p>Hello <strong>team</strong>, the release notes are <a href="https://docs.example.com/releases/4.2?ref=mail&amp;lang=en" target="_blank" rel="noopener noreferrer">here</a>.</p>`,
		`<p><img src="https://cdn.example.com/img/diagram-v2.png" alt="architecture diagram" width="640" height="360"></p><p>Figure 1: the data path</p>`,
		`<table class="data"><thead><tr><th>Name</th><th>Score</th></tr></thead><tbody><tr><td>Ana</td><td>93</td></tr><tr><td>Bo</td><td>88</td></tr></tbody></table>`,
		`<ul><li>Select a plan</li><li>Insert your card</li><li>Drop us a line if anything fails</li></ul>`,
		`<blockquote cite="https://example.org/quote">Premature optimization is the root of all evil.</blockquote><p>&mdash; Knuth</p>`,
		`<pre><code class="language-sql">SELECT id, name FROM users WHERE active = true ORDER BY name;</code></pre>`,
		`<h2 id="setup">Setup</h2><p>Run <code>make install</code> then open <em>http://localhost:8080/</em>.</p>`,
		`<div style="color: #333; font-family: Arial, sans-serif"><span style="font-weight:bold">Note:</span> prices include VAT.</div>`,
		`<p>Use the <kbd>Ctrl</kbd>+<kbd>C</kbd> shortcut to copy &lt;script&gt; tags as text.</p>`,
		`<p dir="rtl" lang="ar">مرحبا بكم في <b>المنتدى</b></p><p>Bienvenue à <i>tous</i> !</p>`,
	}
	codeSnippets = []string{
		"```go\nfunc main() {\n\tif err := run(os.Args[1:]); err != nil {\n\t\tfmt.Fprintln(os.Stderr, err)\n\t\tos.Exit(1)\n\t}\n}\n```",
		"```python\nfor row in cursor.execute(\"SELECT name FROM users WHERE id = ?\", (uid,)):\n    print(row[0])\n```",
		"```js\nconst items = data.filter(x => x.active).map(x => ({ id: x.id, name: x.name }));\nconsole.log(items.length);\n```",
		"```sh\n#!/bin/sh\nset -eu\nfor f in *.log; do gzip \"$f\"; done\n```",
		"```sql\nCREATE INDEX idx_orders_date ON orders (created_at);\nSELECT count(*) FROM orders WHERE created_at > now() - interval '1 day';\n```",
		"    def greet(name):\n        return f\"Hello, {name}!\"\n",
		"```java\npublic static void main(String[] args) {\n    System.out.println(\"hello\");\n}\n```",
		"```css\n.button:hover { background: linear-gradient(#fff, #eee); }\n```",
		"```yaml\nservices:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n```",
		"Error: Cannot read properties of undefined (reading 'map')\n    at render (app.js:42:17)\n    at update (react-dom.js:1203:9)",
	}
	nonASCII = []string{
		"我想查询一下订单状态，谢谢",
		"Привет! Где можно скачать инструкцию?",
		"東京都渋谷区のカフェを探しています",
		"¿Dónde está la estación de tren? Gracias 😊",
		"Ünïcödé ßtraße — naïve café résumé",
		"كيف يمكنني تغيير كلمة المرور؟",
		"한국어 검색어 테스트: 서울 맛집",
		"🎉🎉 Congrats on the launch!! 🚀",
		"Ελληνικά: καλημέρα κόσμε",
		"हिन्दी में खोज: दिल्ली मौसम",
	}
	jsonDocs = []string{
		`{"query":"select a seat","filters":{"price":{"min":10,"max":200},"tags":["drop-in","union square"]},"page":2}`,
		`{"user":{"name":"O'Neil","email":"o.neil@example.com","bio":"I <3 SQL & shell scripting"},"settings":{"theme":"dark"}}`,
		`{"events":[{"type":"click","target":"#buy-now","ts":1733356800123},{"type":"scroll","y":1200}]}`,
		`{"comment":"LGTM, but please rename getUserById -> findUser; also ` + "`" + `rm -rf build/` + "`" + ` before running"}`,
		`{"html":"<p>Thanks for the <b>quick</b> fix!</p>","format":"rich"}`,
		`{"sql":"-- report\nSELECT region, sum(total) FROM sales GROUP BY region","dashboard":"q4"}`,
		`{"address":{"street":"1 Union St.","city":"Zürich","zip":"8001"},"phone":"+41 44 000 00 00"}`,
		`{"op":"replace","path":"/spec/replicas","value":3}`,
		`{"message":"Where does the 'or' operator go? a || b && c","lang":"en"}`,
		`{"title":"10 tips for bash scripting","body":"Use set -euo pipefail; quote \"$vars\"; prefer $(cmd) over backticks.","tags":["bash","linux"]}`,
	}
	// Prose whose apostrophes, quotes and dashes sit beside SQL words
	// and numbers, as reviews, forum posts and support tickets write them.
	proseQuotes = []string{
		"select one from the list where it fits",
		"I'd like 1 or 2, whichever ships first",
		"O'Reilly's 'best of' list -- 2nd ed.",
		"drop table tennis on Thursdays; squash instead",
		"Meet at Union Station and/or 5th Avenue",
		"Tom's or Jerry's cheese, I can't decide",
		"if x=1 then 1=1 holds, as every maths teacher says",
		"He said 'and' -- twice, then 'or'",
		"users' and admins' roles are listed on the 'Team' page",
		"Rock 'n' roll or jazz? Both, if it's live",
		"Where's the 'or' in 'for'?",
		"1 or 2 or 3 items per order, not more",
	}
	// Text with angle brackets, pipes and semicolons that is no markup
	// and no command: comparisons, hearts, emoticons, addresses, menus,
	// CSV rows.
	symbolText = []string{
		"a < b > c, so b is in the middle",
		"I <3 this place <3",
		"so sad >_< but ok =^.^=",
		"Ana Lee <ana.lee@example.com>",
		"Select All | Delete | Archive",
		"cat and dog; fish and bird",
		"shop & go, then eat | sleep",
		"AT&T; Verizon & T-Mobile",
		"Doe, John; Roe, Jane; O'Neil, Pat",
		"id;name;note\n1;O'Brien;cat & dog\n2;Smith;a | b",
		"the | character is a pipe, the ; a semicolon",
		"rm -rf is dangerous, don't run it on /",
	}
	// Values that are tokens, paths and queries: what forms and APIs
	// carry besides words.
	tokenText = []string{
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsIm5hbWUiOiJBbmEiLCJpYXQiOjE3MzMzNTY4MDB9.kq3l4Rw8f2mX0Qk5sYtP9bZc1vN7uHjD6aE0oLgWiFs",
		"U29tZSBiYXNlNjQgdGV4dCB3aXRoICdxdW90ZXMnIGFuZCBhIHNlbWljb2xvbjsgYW5kIGEgfCBwaXBl",
		"C:\\Users\\ana\\Documents\\Q4 report (final).docx",
		"/home/ana/projects/site/config/settings.yaml",
		"./images/logo.png",
		"query Q($id: ID!) { node(id: $id) { ... on User { name email } } }",
		"\"red shoes\" -sale size:42",
		"title:\"select\" author:\"o'neil\"",
		"https://www.example.com/search?q=a+%26+b&utm_source=news&utm_medium=email",
		"v=1&t=pageview&tid=UA-000000-1&cid=555&dl=https%3A%2F%2Fexample.com%2Fshop%3Fid%3D7",
	}
	// Sentences joined to the bases, so that each kind has many values.
	tails = []string{"", " Thanks!", " — sent from my phone", " (see attached)", " Cheers, Ana", " 谢谢", " Danke schön."}
)

// benignTexts returns every generated benign value, in a fixed order.
func benignTexts() []benignText {
	var out []benignText
	add := func(kind string, bases []string, document bool) {
		for _, b := range bases {
			for _, t := range tails {
				if document && t != "" {
					// A document's closing words go on a line of
					// their own, after its last block.
					t = "\n\n" + strings.TrimSpace(t)
				}
				out = append(out, benignText{kind: kind, text: b + t, document: document})
			}
		}
	}
	add("prose-sql", proseSQL, false)
	add("prose-shell", proseShell, false)
	add("rich-text", richText, true)
	add("code", codeSnippets, true)
	add("non-ascii", nonASCII, false)
	add("prose-quotes", proseQuotes, false)
	add("symbols", symbolText, false)
	add("tokens", tokenText, false)
	for _, d := range jsonDocs {
		out = append(out, benignText{kind: "json-api", text: d, json: true, document: true})
		// The same document with one string field joined to a tail.
		out = append(out, benignText{kind: "json-api", text: strings.Replace(d, `"}`, ` please"}`, 1), json: true, document: true})
	}
	return out
}
