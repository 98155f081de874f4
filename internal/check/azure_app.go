package check

import (
	"fmt"
	"net/netip"
	"strings"

	"go4.org/netipx"

	"moat/internal/check/tf"
)

// Azure App Service and Function Apps face the internet on their own
// addresses: a site admits every address unless public network access is
// off or its access restrictions (site_config.ip_restriction, and
// scm_ip_restriction for the deployment site, Kudu) end in a deny. Its
// transport is its own too: plain HTTP unless https_only, FTP beside FTPS
// unless ftps_state says otherwise, and a minimum TLS version.

// App Service and transport rule IDs.
const (
	RuleAzAppOpen = "AZ-APP-001"
	RuleAzWeakTLS = "AZ-TLS-001"
)

func azureAppRules() []Rule {
	return []Rule{
		{RuleAzAppOpen, Medium, "App Service, Function App or Container App admits every internet address",
			"A web app, function app or one of their slots leaves public network access on and its access restrictions admit every address: no ip_restriction (or scm_ip_restriction) block (on the resources whose default actions the provider sets, only with a default action other than Deny: no rule matches, the default decides), an allow of 0.0.0.0/0 or ::/0 without header filters, or allows that together hold the internet at large (public ranges wider than a /8 of IPv4 or a /13 of IPv6, as AZ-NET-005 reads them; an entry's comma-separated ranges included), an allow of the service tag AzureFrontDoor.Backend or AzureCloud without header filters (every tenant's Front Door profiles and machines send from those addresses: a profile anyone makes forwards the whole internet unless x_azure_fdid names the site's own; a headers block of empty lists filters nothing), or a default action of Allow for addresses no rule matches. The azurerm provider defaults ip_restriction_default_action and scm_ip_restriction_default_action to Allow on azurerm_linux_web_app, azurerm_windows_web_app, the function apps and their slots, so restrictions there admit everyone unless the default action is Deny (from azurerm 3.95, which added them: before it, by the lock file or the version constraints, the provider sends none and the rules end in an implicit deny); on azurerm_app_service and azurerm_function_app (azurerm before 4.0) the rules end in an implicit deny. The deployment (SCM, Kudu) site open to the internet is medium; the main site alone, which many apps serve to everyone on purpose, is low. A container app whose ingress is external (external_enabled), in an environment that faces the internet (not internal_load_balancer_enabled, public_network_access not Disabled), is reported when its ip_security_restriction entries allow no narrower range (entries that only deny leave every other address in): low over HTTP, medium over TCP transport, a raw port on the internet. Restrictions that are not known statically (a dynamic block over a variable) are read as admitting everyone, and the finding says so.",
			"Set public_network_access_enabled = false and reach the app through a private endpoint or Front Door, or list ip_restriction and scm_ip_restriction entries with ip_restriction_default_action = \"Deny\" and scm_ip_restriction_default_action = \"Deny\" (or scm_use_main_ip_restriction = true); on a container app, allow only the ranges that need it in ip_security_restriction, or set external_enabled = false or an internal environment."},
		{RuleAzWeakTLS, Medium, "Azure service accepts plaintext or TLS below 1.2",
			"A web app or function app does not set https_only = true (its default is false, so it answers plain HTTP), admits FTP beside FTPS (ftps_state = \"AllAllowed\", the platform's default for azurerm_app_service and azurerm_function_app when unset) or admits TLS 1.0 or 1.1 (minimum_tls_version, scm_minimum_tls_version, min_tls_version); a Redis cache opens its non-TLS port (enable_non_ssl_port, non_ssl_port_enabled) or admits TLS below 1.2; a Managed Redis or Redis Enterprise database's client_protocol is Plaintext (Encrypted unless set), or a Redis Enterprise cluster's minimum_tls_version is below 1.2; a storage account admits HTTP (enable_https_traffic_only, https_traffic_only_enabled = false) or TLS below 1.2 (min_tls_version unset is TLS1_0 where the configuration runs azurerm before 3.0, by its lock file or its required_providers constraints, and TLS1_2 otherwise); a container app's external ingress allows insecure connections (allow_insecure_connections = true), answering HTTP rather than redirecting it; an Azure SQL server admits TLS below 1.2; a PostgreSQL, MySQL or MariaDB single server turns SSL enforcement off (ssl_enforcement_enabled = false) or admits TLS below 1.2, or a flexible server's require_secure_transport parameter is OFF; an Application Gateway serves plain HTTP on a listener of a public frontend that its routing rules do not redirect to HTTPS (AWS-LB-001 is the AWS counterpart). A minimum TLS version not known statically is read at its worst, TLS 1.0, and the finding says so. Credentials and data then cross the network readable.",
			"Set https_only = true, ftps_state = \"FtpsOnly\" or \"Disabled\", minimum_tls_version = \"1.2\" (and scm_minimum_tls_version), and on Redis, storage and SQL leave the non-TLS port off and the minimum TLS version at 1.2; leave a container app's allow_insecure_connections false; give an Application Gateway an HTTPS listener and route its HTTP listener to a redirect_configuration whose target is that listener."},
	}
}

// appTypes are the App Service resources; legacy ones (azurerm before 4.0)
// have no default action: their access restrictions end in an implicit deny.
var appTypes = map[string]bool{
	"azurerm_linux_web_app":                 false,
	"azurerm_windows_web_app":               false,
	"azurerm_linux_function_app":            false,
	"azurerm_windows_function_app":          false,
	"azurerm_linux_web_app_slot":            false,
	"azurerm_windows_web_app_slot":          false,
	"azurerm_linux_function_app_slot":       false,
	"azurerm_windows_function_app_slot":     false,
	"azurerm_function_app_flex_consumption": false,
	"azurerm_app_service":                   true,
	"azurerm_app_service_slot":              true,
	"azurerm_function_app":                  true,
	"azurerm_function_app_slot":             true,
}

// restrictionsOpen tells whether a site's access restrictions admit every
// internet address: why says how, assumed whether that rests on a value
// not known statically. Nothing returned: the restrictions hold.
func (m *Model) restrictionsOpen(sc map[string]any, list, action string, legacy bool) (why string, assumed bool) {
	if unknown(sc, list) {
		return list + " is not known statically: read as admitting every address", true
	}
	entries := blocks(sc, list)
	none := ""
	if len(entries) == 0 {
		if legacy {
			return "no " + list + ": App Service admits every address", false
		}
		// No rule matches: the default action decides.
		none = "no " + list + " and "
	}
	// The ranges the entries allow, read together: ranges that span the
	// internet at large between them admit it as one would.
	var allowed netipx.IPSetBuilder
	for _, e := range entries {
		if strings.EqualFold(str(e, "action"), "Deny") {
			continue
		}
		// An entry names one of an address range, a service tag or a
		// subnet: only a range may be every address. A range not known
		// statically is read as one, unless a tag or subnet is known.
		if unknown(e, "ip_address") && str(e, "service_tag") == "" && str(e, "virtual_network_subnet_id") == "" {
			return "an " + list + " entry is not known statically: read as admitting every address", true
		}
		if headerFiltered(e) {
			continue // admits only requests that carry the named headers
		}
		if tag := str(e, "service_tag"); sharedTag(tag) {
			return list + " allows service tag " + tag + " with no header filter (x_azure_fdid): every tenant's services under that tag reach the site, a Front Door profile anyone makes forwarding any internet address", false
		}
		ip := strings.TrimSpace(str(e, "ip_address"))
		if mask := str(e, "subnet_mask"); mask != "" && !strings.Contains(ip, "/") {
			// azurerm 1.x: an address and a mask; a mask of 0.0.0.0 is /0.
			if mask == "0.0.0.0" {
				return list + " allows " + ip + " with subnet mask 0.0.0.0, every address", false
			}
			continue
		}
		if p, err := netip.ParsePrefix(ip); err == nil && p.Bits() == 0 {
			return list + " allows " + ip + ", every address of its family", false
		}
		// One address or range, or several separated by commas.
		for _, x := range strings.Split(ip, ",") {
			if p, err := netip.ParsePrefix(strings.TrimSpace(x)); err == nil {
				allowed.AddPrefix(p.Masked())
			}
		}
	}
	if set, _ := allowed.IPSet(); wide(m.Internet().Set, set, nil) {
		return list + " allows " + m.worldText(set), false
	}
	if legacy {
		return "", false // the rules end in an implicit deny
	}
	switch def := str(sc, action); {
	case unknown(sc, action):
		return none + action + " is not known statically: read as Allow, admitting what no rule matches", true
	case def == "" && none == "":
		// Before azurerm 3.95 the provider sends no default action,
		// and App Service ends the rules in an implicit deny.
		if _, before := m.providerBefore("azurerm", "3.95.0"); before {
			return "", false
		}
		return action + " is not set: read as Allow, the azurerm provider's default from 3.95 on, which admits every address no rule matches", false
	case def == "":
		return none + action + " is not set: read as Allow, the azurerm provider's default, which admits every address no rule matches", false
	case strings.EqualFold(def, "Allow"):
		return none + action + " is Allow: every address no rule matches is admitted", false
	}
	return "", false
}

// whom names who a site's open restrictions admit, as why says.
func whom(why string) string {
	if strings.Contains(why, "the internet at large") {
		return "the internet at large"
	}
	return "every internet address"
}

// headerFiltered tells whether an access restriction entry admits only
// requests that carry named header values: a headers block listing some
// value, or one not known statically (x_azure_fdid = [a profile's
// resource_guid] is known only after apply). A block of empty lists
// filters nothing.
func headerFiltered(e map[string]any) bool {
	if unknown(e, "headers") {
		return true
	}
	for _, h := range blocks(e, "headers") {
		for k := range h {
			if vals, unk := strs(h, k); unk || len(vals) > 0 {
				return true
			}
		}
	}
	return false
}

// sharedTag tells whether an App Service access restriction's service tag
// names addresses that every tenant's services send from: AzureCloud (any
// tenant's machines, in a region when scoped) and AzureFrontDoor.Backend
// (any tenant's Front Door profile, which forwards whatever the internet
// sends it unless the site checks the X-Azure-FDID header of its own).
func sharedTag(tag string) bool {
	t := strings.ToLower(strings.TrimSpace(tag))
	return t == "azurefrontdoor.backend" || t == "azurecloud" || strings.HasPrefix(t, "azurecloud.")
}

// weakTLS tells whether a minimum TLS version admits TLS 1.0 or 1.1.
func weakTLS(v string) bool {
	v = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(v), "_", "."))
	v = strings.TrimPrefix(v, "TLS")
	return v == "1.0" || v == "1.1" || v == "1" || strings.EqualFold(v, "Disabled")
}

// tlsFloor says why setting k of vals admits TLS below 1.2: its value, or,
// not known statically, TLS 1.0, its worst, said so; "" when it does not.
func tlsFloor(vals map[string]any, k string) string {
	if unknown(vals, k) {
		return k + " is not known statically: read as TLS 1.0, which admits TLS 1.0 and 1.1"
	}
	if v := str(vals, k); weakTLS(v) {
		return k + " is " + v
	}
	return ""
}

func (m *Model) azureApps(byType map[string][]*tf.Resource, fs *findings) {
	pes := m.privateEndpoints(byType)
	for _, typ := range sortedKeys(appTypes) {
		legacy := appTypes[typ]
		for _, r := range byType[typ] {
			sc := block(r.Values, "site_config")
			switch {
			case sc == nil && unknown(r.Values, "site_config"):
				// Every setting of the site may be anything.
				u := tf.Unknown{Why: "site_config is not known statically"}
				sc = map[string]any{"ip_restriction": u, "scm_ip_restriction": u, "ftps_state": u}
			case sc == nil:
				sc = map[string]any{}
			}
			m.appOpen(r, sc, legacy, pes[r.Address], fs)
			var weak []string
			switch {
			case unknown(r.Values, "https_only"):
				weak = append(weak, "https_only is not known statically: read as false, plain HTTP answered")
			case !boolean(r.Values, "https_only", false):
				weak = append(weak, "https_only is not true: the app answers plain HTTP")
			}
			switch ftps := str(sc, "ftps_state"); {
			case unknown(sc, "ftps_state"):
				weak = append(weak, "ftps_state is not known statically: read as AllAllowed, FTP without TLS")
			case strings.EqualFold(ftps, "AllAllowed"):
				weak = append(weak, "ftps_state is AllAllowed: FTP without TLS is accepted")
			case ftps == "" && legacy:
				weak = append(weak, "ftps_state is not set: the platform's default for this resource is AllAllowed, FTP without TLS")
			}
			for _, k := range []string{"minimum_tls_version", "scm_minimum_tls_version", "min_tls_version"} {
				if why := tlsFloor(sc, k); why != "" {
					weak = append(weak, why)
				}
			}
			if len(weak) > 0 {
				fs.add(RuleAzWeakTLS, r, nil, "%s", strings.Join(weak, "; "))
			}
		}
	}
	appGatewayPlainHTTP(byType, fs)
	m.containerAppsOpen(byType, fs)
	for _, r := range byType["azurerm_redis_cache"] {
		var weak []string
		for _, k := range []string{"enable_non_ssl_port", "non_ssl_port_enabled"} {
			if boolean(r.Values, k, false) {
				weak = append(weak, k+" = true: port 6379 accepts connections without TLS")
			}
		}
		if why := tlsFloor(r.Values, "minimum_tls_version"); why != "" {
			weak = append(weak, why)
		}
		if len(weak) > 0 {
			fs.add(RuleAzWeakTLS, r, nil, "%s", strings.Join(weak, "; "))
		}
	}
	// Managed Redis's database speaks TLS unless its client_protocol is
	// Plaintext; one not known statically is read so.
	for _, r := range byType["azurerm_managed_redis"] {
		switch db := block(r.Values, "default_database"); {
		case db == nil:
		case unknown(db, "client_protocol"):
			fs.add(RuleAzWeakTLS, r, nil, "default_database.client_protocol is not known statically: read as Plaintext, clients connecting without TLS")
		case strings.EqualFold(str(db, "client_protocol"), "Plaintext"):
			fs.add(RuleAzWeakTLS, r, nil, "default_database.client_protocol = Plaintext: clients connect without TLS")
		}
	}
	// A Redis Enterprise database speaks TLS unless its client_protocol
	// is Plaintext; its cluster takes TLS 1.2 unless minimum_tls_version
	// says less.
	for _, r := range byType["azurerm_redis_enterprise_database"] {
		switch {
		case unknown(r.Values, "client_protocol"):
			fs.add(RuleAzWeakTLS, r, nil, "client_protocol is not known statically: read as Plaintext, clients connecting without TLS")
		case strings.EqualFold(str(r.Values, "client_protocol"), "Plaintext"):
			fs.add(RuleAzWeakTLS, r, nil, "client_protocol = Plaintext: clients connect without TLS")
		}
	}
	for _, r := range byType["azurerm_redis_enterprise_cluster"] {
		if why := tlsFloor(r.Values, "minimum_tls_version"); why != "" {
			fs.add(RuleAzWeakTLS, r, nil, "%s", why)
		}
	}
	// A container app's ingress redirects HTTP to HTTPS unless it allows
	// insecure connections; an ingress of TCP transport carries no HTTP,
	// and one that is not external answers its environment alone.
	for _, r := range byType["azurerm_container_app"] {
		for _, in := range blocks(r.Values, "ingress") {
			if boolean(in, "allow_insecure_connections", false) && boolean(in, "external_enabled", true) && !strings.EqualFold(str(in, "transport"), "tcp") {
				fs.add(RuleAzWeakTLS, r, nil, "ingress.allow_insecure_connections = true on an external ingress: the app answers plain HTTP rather than redirecting it to HTTPS")
			}
		}
	}
	for _, r := range byType["azurerm_storage_account"] {
		var weak []string
		for _, k := range []string{"enable_https_traffic_only", "https_traffic_only_enabled"} {
			if has(r.Values, k) && !unknown(r.Values, k) && !boolean(r.Values, k, true) {
				weak = append(weak, k+" = false: the account accepts plain HTTP")
			}
		}
		if why := tlsFloor(r.Values, "min_tls_version"); why != "" {
			weak = append(weak, why)
		} else if why, before := m.providerBefore("azurerm", "3.0.0"); before && !has(r.Values, "min_tls_version") {
			// TLS1_2 by default since azurerm 3.0, TLS1_0 before.
			weak = append(weak, "min_tls_version is not set, and the provider is "+why+": before 3.0 it defaults to TLS1_0")
		}
		if len(weak) > 0 {
			fs.add(RuleAzWeakTLS, r, nil, "%s", strings.Join(weak, "; "))
		}
	}
	for _, r := range byType["azurerm_mssql_server"] {
		if why := tlsFloor(r.Values, "minimum_tls_version"); why != "" {
			fs.add(RuleAzWeakTLS, r, nil, "%s", why)
		}
	}
	// Single servers (azurerm before 4.0) enforce TLS in the resource;
	// flexible servers through the require_secure_transport parameter.
	for _, typ := range []string{"azurerm_postgresql_server", "azurerm_mysql_server", "azurerm_mariadb_server"} {
		for _, r := range byType[typ] {
			var weak []string
			if has(r.Values, "ssl_enforcement_enabled") && !unknown(r.Values, "ssl_enforcement_enabled") && !boolean(r.Values, "ssl_enforcement_enabled", true) {
				weak = append(weak, "ssl_enforcement_enabled = false: clients connect without TLS")
			}
			if why := tlsFloor(r.Values, "ssl_minimal_tls_version_enforced"); why != "" {
				weak = append(weak, why)
			} else if v := str(r.Values, "ssl_minimal_tls_version_enforced"); strings.EqualFold(v, "TLSEnforcementDisabled") {
				weak = append(weak, "ssl_minimal_tls_version_enforced is "+v)
			}
			if len(weak) > 0 {
				fs.add(RuleAzWeakTLS, r, nil, "%s", strings.Join(weak, "; "))
			}
		}
	}
	// A PostgreSQL parameter names its server by server_id, a MySQL one
	// by server_name.
	for _, c := range [][2]string{{"azurerm_postgresql_flexible_server_configuration", "server_id"}, {"azurerm_mysql_flexible_server_configuration", "server_name"}} {
		typ, server := c[0], c[1]
		for _, r := range byType[typ] {
			if strings.EqualFold(str(r.Values, "name"), "require_secure_transport") && strings.EqualFold(str(r.Values, "value"), "off") {
				fs.add(RuleAzWeakTLS, r, nil, "require_secure_transport is OFF: clients of %s connect without TLS", orDash(m.addrOf(strings.TrimSuffix(typ, "_configuration"), m.ref(r.Values, server))))
			}
		}
	}
}

// appOpen reports a site whose main or deployment site admits every
// internet address (AZ-APP-001).
func (m *Model) appOpen(r *tf.Resource, sc map[string]any, legacy bool, pes []string, fs *findings) {
	switch {
	case unknown(r.Values, "public_network_access_enabled"):
	case has(r.Values, "public_network_access_enabled") && !boolean(r.Values, "public_network_access_enabled", true):
		return // reached through private endpoints only
	}
	pna := ""
	if unknown(r.Values, "public_network_access_enabled") {
		pna = "public_network_access_enabled is not known statically (read as true); "
	}
	main, mainAssumed := m.restrictionsOpen(sc, "ip_restriction", "ip_restriction_default_action", legacy)
	var scm string
	scmAssumed := false
	switch {
	case unknown(sc, "scm_use_main_ip_restriction"):
		scm, scmAssumed = m.restrictionsOpen(sc, "scm_ip_restriction", "scm_ip_restriction_default_action", legacy)
		if scm == "" {
			scm, scmAssumed = main, mainAssumed
		}
	case boolean(sc, "scm_use_main_ip_restriction", false):
		scm, scmAssumed = main, mainAssumed
		if scm != "" {
			scm = "scm_use_main_ip_restriction = true and " + scm
		}
	default:
		scm, scmAssumed = m.restrictionsOpen(sc, "scm_ip_restriction", "scm_ip_restriction_default_action", legacy)
	}
	if len(pes) > 0 {
		// A private endpoint adds a way in; it closes none.
		pna += strings.Join(pes, ", ") + " reaches it privately, but public access stays on until public_network_access_enabled = false; "
	}
	may := func(assumed bool) string {
		if assumed {
			return "may admit"
		}
		return "admits"
	}
	switch {
	case scm != "" && main != "":
		fs.add(RuleAzAppOpen, r, nil, "%sthe main site %s %s (%s) and the deployment (SCM) site %s %s (%s)", pna, may(mainAssumed), whom(main), main, may(scmAssumed), whom(scm), scm)
	case scm != "":
		fs.add(RuleAzAppOpen, r, nil, "%sthe deployment (SCM) site %s %s (%s)", pna, may(scmAssumed), whom(scm), scm)
	case main != "":
		fs.addSev(RuleAzAppOpen, Low, r, nil, "%sthe main site %s %s (%s); its deployment (SCM) site is restricted", pna, may(mainAssumed), whom(main), main)
	}
}

// containerAppsOpen reports container apps whose external ingress admits
// the internet at large (AZ-APP-001): their environment faces the
// internet (not internal_load_balancer_enabled, public_network_access not
// Disabled; one outside the scanned code is read so) and their
// ip_security_restriction entries allow no narrower ranges (entries that
// only deny leave every other address in). An HTTP ingress is low, as a
// site without a deployment site; one of TCP transport, a raw port on the
// internet, is medium.
func (m *Model) containerAppsOpen(byType map[string][]*tf.Resource, fs *findings) {
	inet := m.Internet().Set
	for _, r := range byType["azurerm_container_app"] {
		var why []string
		env := m.lookup(m.ref(r.Values, "container_app_environment_id"))
		if env != nil && env.Type == "azapi_resource" && strings.EqualFold(armType(env.Values), azapiAppEnvType) {
			env = azapiAppEnv(env)
		}
		if env == nil {
			why = append(why, "its environment is not in the scanned code: read as facing the internet")
		} else {
			if boolean(env.Values, "internal_load_balancer_enabled", false) && !unknown(env.Values, "internal_load_balancer_enabled") {
				continue // reached from its virtual network alone
			}
			if strings.EqualFold(str(env.Values, "public_network_access"), "Disabled") {
				continue
			}
		}
		for _, in := range blocks(r.Values, "ingress") {
			if !boolean(in, "external_enabled", false) && !unknown(in, "external_enabled") {
				continue // answers its environment alone
			}
			var allowed, denied netipx.IPSetBuilder
			allows, assumed := false, unknown(in, "ip_security_restriction")
			for _, e := range blocks(in, "ip_security_restriction") {
				p, err := netip.ParsePrefix(strings.TrimSpace(str(e, "ip_address_range")))
				if a, aerr := netip.ParseAddr(strings.TrimSpace(str(e, "ip_address_range"))); aerr == nil {
					p, err = netip.PrefixFrom(a, a.BitLen()), nil
				}
				deny := strings.EqualFold(str(e, "action"), "Deny")
				switch {
				case unknown(e, "ip_address_range") || unknown(e, "action") || err != nil:
					assumed = assumed || !deny
					allows = allows || !deny
				case deny:
					denied.AddPrefix(p.Masked())
				default:
					allows = true
					allowed.AddPrefix(p.Masked())
				}
			}
			var admitted *netipx.IPSet
			what := "no ip_security_restriction allows a narrower range"
			if allows {
				admitted, _ = allowed.IPSet()
				what = "its ip_security_restriction allows"
			} else if d, _ := denied.IPSet(); !empty(d) {
				admitted = minus(inet, d)
				what = "its ip_security_restriction only denies " + m.describe(d)
			} else {
				admitted = inet
			}
			if !assumed && !wide(inet, admitted, nil) {
				continue
			}
			sev, port := Low, ""
			if strings.EqualFold(str(in, "transport"), "tcp") {
				sev, port = Medium, fmt.Sprintf(" on tcp %d", num(in, "exposed_port", num(in, "target_port", 0)))
			}
			msg := fmt.Sprintf("external ingress%s admits %s (%s)", port, m.worldText(admitted), what)
			if assumed {
				msg = fmt.Sprintf("external ingress%s may admit every internet address: its ip_security_restriction is not known statically", port)
			}
			fs.addSev(RuleAzAppOpen, sev, r, nil, "%s", strings.Join(append(why, msg), "; "))
		}
	}
}
