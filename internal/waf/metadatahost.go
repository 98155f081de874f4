package waf

import (
	"net/netip"
	"strconv"
	"strings"
)

// Cloud metadata services. A server that fetches a URL it is given hands
// its instance's credentials to whoever names the metadata service: the
// link-local 169.254.169.254 (AWS, GCP, Azure, OpenStack, DigitalOcean;
// 169.254.170.2 for ECS tasks), Alibaba's 100.100.100.200, AWS's IPv6
// fd00:ec2::254, and the names that resolve to them. Attackers write the
// address every way a URL parser reads it and a filter does not: one
// integer ("2852039166"), hex or octal parts ("0xa9.0xfe.0xa9.0xfe",
// "0251.0376.0251.0376"), IPv4 inside IPv6 ("[::ffff:a9fe:a9fe]"), a
// wildcard-DNS name that embeds it ("169.254.169.254.nip.io"), behind
// user information ("http://x.example:80@169.254.169.254/"). metadataURL
// reads each URL's host as a URL parser and a resolver do and reports
// the first that is the metadata service, where the URL is one a server
// would fetch (the value, an attribute's or a key's value, a line of its
// own; see ssrfScore).

// maxMetadataRead bounds what is scanned of a value.
const maxMetadataRead = 16 << 10

// metadataNames are the host names of metadata services.
var metadataNames = map[string]bool{
	"metadata": true, "metadata.google.internal": true, "metadata.goog": true, "instance-data": true,
	"instance-data.ec2.internal": true, "metadata.tencentyun.com": true, "metadata.platformequinix.com": true,
}

// metadataURLNeed: a value metadataURL finds a host in holds its "//".
const metadataURLNeed = "/"

// metadataURL returns the host of the first fetchable URL in v that is a
// metadata service, or "".
func metadataURL(v string) string {
	if len(v) > maxMetadataRead {
		v = v[:maxMetadataRead]
	}
	for off := 0; off < len(v); {
		i := strings.Index(v[off:], "//")
		if i < 0 {
			break
		}
		i += off
		off = i + 2
		// The scheme before "//", if any ("http:", "gopher:", or none in
		// a scheme-relative URL).
		j := i
		if j > 0 && v[j-1] == ':' {
			j--
			for j > 0 && (isAlnum(v[j-1]) || strings.IndexByte("+.-", v[j-1]) >= 0) {
				j--
			}
		}
		before := strings.TrimRight(v[:j], " \t")
		if before != "" && strings.IndexByte("=:\"'(`[{,\n\r", before[len(before)-1]) < 0 {
			continue
		}
		auth := v[i+2:]
		if k := strings.IndexAny(auth, "/?#\\ \t\r\n\"'<>`"); k >= 0 {
			auth = auth[:k]
		}
		if h := hostOf(auth); isMetadataHost(h) {
			return h
		}
	}
	return ""
}

// hostOf is the host of a URL's authority: after the user information,
// without the port, lower-cased, without a final dot.
func hostOf(auth string) string {
	if k := strings.LastIndexByte(auth, '@'); k >= 0 {
		auth = auth[k+1:]
	}
	if strings.HasPrefix(auth, "[") {
		if k := strings.IndexByte(auth, ']'); k >= 0 {
			return strings.ToLower(auth[:k+1])
		}
		return strings.ToLower(auth)
	}
	if k := strings.LastIndexByte(auth, ':'); k >= 0 {
		auth = auth[:k]
	}
	return strings.TrimSuffix(strings.ToLower(auth), ".")
}

// isMetadataHost reports whether host (as hostOf gives it) reaches a
// metadata service.
func isMetadataHost(host string) bool {
	if host == "" {
		return false
	}
	if metadataNames[host] {
		return true
	}
	if strings.HasPrefix(host, "[") {
		s := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if k := strings.IndexByte(s, '%'); k >= 0 {
			s = s[:k]
		}
		a, err := netip.ParseAddr(s)
		return err == nil && metadataAddr(a.Unmap())
	}
	if a, ok := parseInetAton(host); ok {
		return metadataAddr(a)
	}
	// A name that embeds the address for a wildcard resolver:
	// "169.254.169.254.nip.io", "169-254-169-254.sslip.io".
	labels := strings.Split(host, ".")
	if len(labels) > 4 {
		if a, ok := parseInetAton(strings.Join(labels[:4], ".")); ok && metadataAddr(a) {
			return true
		}
	}
	if len(labels) > 1 {
		if a, err := netip.ParseAddr(strings.ReplaceAll(labels[0], "-", ".")); err == nil && metadataAddr(a) {
			return true
		}
	}
	return false
}

var (
	linkLocal4   = netip.MustParsePrefix("169.254.0.0/16")
	linkLocal6   = netip.MustParsePrefix("fe80::/10")
	alibabaMeta  = netip.MustParseAddr("100.100.100.200")
	awsMetaIPv6  = netip.MustParseAddr("fd00:ec2::254")
	oracleMetaV6 = netip.MustParseAddr("fd00:c1::a9fe:a9fe")
)

func metadataAddr(a netip.Addr) bool {
	return linkLocal4.Contains(a) || linkLocal6.Contains(a) || a == alibabaMeta || a == awsMetaIPv6 || a == oracleMetaV6
}

// parseInetAton reads an IPv4 address as inet_aton and URL parsers do:
// one to four parts, each decimal, hex ("0x") or octal (a leading 0),
// the last filling the bytes the others leave.
func parseInetAton(s string) (netip.Addr, bool) {
	if s == "" || len(s) > 64 {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, p := range parts {
		if p == "" {
			return netip.Addr{}, false
		}
		base := 10
		switch {
		case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
			base, p = 16, p[2:]
			if p == "" {
				p = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		n, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = n
	}
	last := len(parts) - 1
	var ip uint64
	for i := range last {
		if vals[i] > 255 {
			return netip.Addr{}, false
		}
		ip |= vals[i] << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	ip |= vals[last]
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}
