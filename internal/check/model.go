package check

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"go4.org/netipx"

	"moat/internal/check/tf"
)

// Model is the AWS network and data estate that a project describes. Every
// object keeps the address of the resource that declared it, so that a path
// through the model can be explained in the project's own terms.
type Model struct {
	Resources []*tf.Resource
	VPCs      []*VPC
	Subnets   []*Subnet
	Tables    []*RouteTable
	Peerings  []*Peering
	SGs       []*SG
	NACLs     []*NACL
	Endpoints []*Endpoint
	Notes     []tf.Note
	noted     map[tf.Note]bool // Notes, for note to say each once
	// Rejected are values the provider rejects (CHECK-003).
	Rejected []tf.Note
	// nicRanges: for the stand-in of an Azure interface's assigned private
	// address (tf.PrivateIPOf), the ranges of its subnets.
	nicRanges map[string][]netip.Prefix

	byRef map[string]*tf.Resource // id, address and name → resource
	// byName holds every resource by type and name: Azure names the
	// resources it associates, and a name is unique only within its type
	// (a resource group, a subnet and an NSG are often all called alike).
	byName map[[2]string]*tf.Resource
	// missed holds the types of resource a name the model looked up and
	// found no resource of named ("" for any type): a resource whose own
	// name is not known statically (tf.Note.Name) may be it.
	missed  map[string]bool
	byType  map[string][]*tf.Resource
	vpcs    map[string]*VPC
	subnets map[string]*Subnet
	tables  map[string]*RouteTable
	sgs     map[string]*SG
	nacls   map[string]*NACL
	igws    map[string]string          // IGW address → VPC address
	eips    map[string]bool            // instance or ENI address that has an Elastic IP
	tgws    map[string]map[string]bool // transit gateway address → attached VPC addresses
	// tgwVia names, for a transit gateway and a VPC it holds in tgws
	// through a peered gateway, the peering attachment (buildTGWPeerings).
	tgwVia map[[2]string]string
	// tgwRead holds the transit gateways whose route tables are read
	// (buildTGWTables); through the others every attached VPC reaches
	// every other.
	tgwRead map[string]*tgwTables
	// sgUsed holds the security groups that something attaches (or may);
	// sgRef those that a group's rule names as its source or destination.
	sgUsed, sgRef map[string]bool
	// detached holds rules whose group is not known statically.
	detached []*SG
	// elsewhere holds the stand-ins of security groups named by an ID
	// that no group of the scanned code has (sgElsewhere).
	elsewhere map[string]*SG
	// prefixLists holds the ranges of the project's managed prefix lists,
	// nil for one with an entry not known statically.
	prefixLists map[string][]netip.Prefix
	// prefixListsAssumed says, for a list an entry may be in (its list not
	// known statically), that its ranges are assumed.
	prefixListsAssumed map[string]string
	// idleFlowLogs name no VPC, subnet, interface or transit gateway.
	idleFlowLogs []*tf.Resource

	// Indexes for lateral movement, built on first use.
	linked    map[*VPC][]*VPC
	vpcTables map[*VPC][]*RouteTable
	peerCache map[*Subnet][]peerSource
	// appliance holds each Azure subnet's routes to a virtual appliance.
	appliance map[*Subnet][]applianceRoute
	// anySubnet holds, by VPC, the tables an unknown association may put
	// under any subnet.
	anySubnet map[*VPC][]*RouteTable
	// inetRouted keeps what each route table sends to the internet.
	inetRouted map[tableKey]routedSet

	internet *netipx.IPSet   // built on first use
	families []*netipx.IPSet // its IPv4 and IPv6 parts, built on first use

	// providers holds what the configuration says of each provider's
	// version (providerBefore).
	providers map[string]tf.Provider
	// configs holds the provider configuration of each resource and data
	// source, by address (tf.Project.Configs): each has its own default
	// VPC.
	configs map[string]string
	// defaultVPCs holds the default VPC the project adopts or looks up in
	// each provider configuration (buildDefaultVPC).
	defaultVPCs map[string]*VPC

	// privateDefaults holds the provider configurations in which the
	// project manages a default subnet that maps no public addresses: an
	// instance that names no subnet there may land in it
	// (defaultSubnetsPrivate).
	privateDefaults map[string]bool
	// defaultAZs holds, by availability zone, how the default subnet the
	// project manages there maps public addresses when it may map none:
	// "off" (map_public_ip_on_launch = false) or "unknown".
	defaultAZs map[string]string
}

// VPC is an aws_vpc.
type VPC struct {
	Addr  string
	CIDRs []netip.Prefix
	// SpaceAssumed: for an Azure virtual network whose address space is
	// not known statically (CIDRs empty), the ranges it is read to hold
	// as its VirtualNetwork tag and as the source its subnets of unknown
	// range send from (azureSpaceAssumed).
	SpaceAssumed []netip.Prefix
	Main         *RouteTable // nil: the implicit main table (local route only)
	// MaybeMain holds the tables a main route table association not
	// known statically may make the main table; AnyMain: any table of
	// the VPC may be (see Model.tablesOf).
	MaybeMain []*RouteTable
	AnyMain   bool
	NACL      *NACL    // default network ACL; nil: allows everything
	FlowLogs  []string // addresses of flow logs naming this VPC
	Res       *tf.Resource
}

// Subnet is an aws_subnet.
type Subnet struct {
	Addr        string
	VPC         *VPC
	CIDR        netip.Prefix
	MapPublicIP bool
	// AssignIPv6: instances launched in it get a (global) IPv6 address
	// unless they say otherwise (assign_ipv6_address_on_creation).
	AssignIPv6 bool
	Table      *RouteTable // explicit association; nil: the VPC's main table
	// AnyTable: an association names the subnet with a table that is not
	// known statically, so any table of the VPC may govern it.
	AnyTable bool
	// Maybe holds the tables that may govern the subnet through an
	// association whose table or subnet is one of several (an ID taken
	// from a list of aws_route_table instances whose length is not known).
	Maybe []*RouteTable
	NACL  *NACL // explicit association; nil: the VPC's default ACL
	// MaybeACLs holds the network ACLs that may govern the subnet instead:
	// each has a subnet not known statically that may name it (see
	// NACL.SubnetsUnknown).
	MaybeACLs []*NACL
	FlowLogs  []string // addresses of flow logs naming this subnet
	Res       *tf.Resource
}

// RouteTable is an aws_route_table or aws_default_route_table with its
// inline and separate routes.
type RouteTable struct {
	Addr   string
	VPC    *VPC
	Routes []Route
	// AnySubnet: an association names the table with a subnet that is not
	// known statically, so it may govern any subnet of its VPC.
	AnySubnet bool
	Res       *tf.Resource
}

// Route is one route; Kind is what its target is.
type Route struct {
	Dest netip.Prefix
	Kind string // igw, eigw, nat, pcx, tgw, vpce, eni, instance, lgw, local, blackhole, unknown
	// Target is the address of the target resource; "" when it is not
	// known statically: any of its kind (routeTargets), and for kind
	// unknown (a gateway_id) the VPC's internet gateway.
	Target string
	Where  string // the resource (and block) that declared the route
	// Assumed says why the route is read more permissively than written
	// (its destination or target could not be evaluated).
	Assumed string
	// DestUnknown: the destination is not known statically, and Dest
	// stands in for it as every address; DestBits, when set, are the
	// prefix lengths it is known to have (tf.Unknown.Bits).
	DestUnknown bool
	DestBits    []int
}

// igwVPCUnknown stands in igws for the VPC of an internet gateway whose
// vpc_id is not known statically: it may be any VPC's.
const igwVPCUnknown = "(VPC not known statically)"

// igwVPC returns the VPC an internet gateway or its attachment names,
// igwVPCUnknown when that is not known statically.
func (m *Model) igwVPC(r *tf.Resource) string {
	if unknown(r.Values, "vpc_id") {
		return igwVPCUnknown
	}
	return m.addr(str(r.Values, "vpc_id"))
}

// Peering is an aws_vpc_peering_connection.
type Peering struct {
	Addr string
	A, B *VPC
	Res  *tf.Resource
	// Refused is set when the cloud refuses to create the peering (Azure:
	// overlapping address spaces); no route crosses it.
	Refused bool
}

// SG is a security group with all its rules, inline and separate.
type SG struct {
	Addr    string
	VPC     *VPC
	Ingress []SGRule
	Egress  []SGRule
	// detached: a rule resource whose security group is not known
	// statically, kept as a group of its own so that it is still checked.
	detached bool
	Res      *tf.Resource
	// Made names the group AWS makes, in no resource of the code, that
	// an endpoint carries (the one EKS makes for a node group's
	// remote_access): its findings are reported at Res, saying so.
	Made string
}

// SGRule is one security group rule.
type SGRule struct {
	Proto    string // all, tcp, udp, icmp, or a protocol number
	From, To int
	CIDRs    []netip.Prefix
	SGs      []string // referenced security groups (addresses)
	Self     bool
	// SelfAssumed says why Self is read as true: its value is not known
	// statically.
	SelfAssumed string
	// Assumed says why the rule is read as admitting every address: a
	// source could not be evaluated, and what cannot be evaluated is read
	// at its most permissive.
	Assumed string
	// Bounded holds, when every source read under Assumed is an address
	// range of a known prefix length somewhere (tf.Unknown.Bits), those
	// lengths: a path may still come from anywhere through them, but
	// together they are no wider than that. nil: they may be every address.
	Bounded []int
	// Managed names the AWS-managed prefix lists the rule admits (read
	// under Assumed as anywhere): a source from that service's addresses
	// (Source.Service) is admitted by name.
	Managed []string
	// PortsAssumed says why the rule is read as covering every port (of
	// every protocol, when the protocol is not known either).
	PortsAssumed string
	Where        string
	Res          *tf.Resource // the resource that declares the rule
}

// NACL is a network ACL.
type NACL struct {
	Addr    string
	VPC     *VPC
	Ingress []NACLRule
	Egress  []NACLRule
	// TagRoutes holds the route prefixes an Azure NSG's VirtualNetwork
	// tag holds besides the networks' spaces (finishNSG).
	TagRoutes []netip.Prefix
	// Assumed is set when the entries cannot be evaluated: the ACL is then
	// read as allowing everything.
	Assumed string
	// Stateful: an Azure network security group, whose return traffic is
	// allowed and whose entries are ordered by priority.
	Stateful bool
	FlowLogs []string // flow logs naming it (Azure)
	// SubnetsUnknown says why the ACL may govern subnets besides those it
	// names: one in subnet_ids is not known statically.
	SubnetsUnknown string
	Res            *tf.Resource
}

// NACLRule is one numbered network ACL entry.
type NACLRule struct {
	No       int
	Allow    bool
	Proto    string
	From, To int
	CIDR     netip.Prefix
	Assumed  string // why the entry is read more permissively than written
	// Bounded, as SGRule.Bounded: the prefix lengths of the sources
	// Assumed reads as every address, when each is a range of known size.
	Bounded []int
	Where   string
	// Dest, for an NSG allow, holds the addresses its destination names
	// when they are literal ones; nil: any address the NSG guards.
	Dest []netip.Prefix
	// Late, for a deny, says why it is set aside, deciding nothing: read
	// as deciding after every allow (an AWS rule number not known
	// statically), or as denying nothing (an NSG deny that cannot be
	// evaluated); what passes where it would decide rests on that
	// (naclPass).
	Late string
}

// Endpoint is anything with an address in a VPC (or a managed public
// endpoint) that traffic can be sent to.
type Endpoint struct {
	Addr    string
	Kind    string // instance, eni, asg, lb, db, cache, redshift, search, eks, efs, …
	Subnets []*Subnet
	SGs     []*SG
	Public  bool   // has a public address
	Why     string // where the public address comes from
	// PublicAssumed: whether it has a public address is not known
	// statically, and it is read as having one; Why says so.
	PublicAssumed bool
	DataTier      bool
	Gateway       bool  // a load balancer: meant to face the internet
	Ports         []int // the service's own ports, when known
	// Managed is set for endpoints outside any VPC (an OpenSearch domain
	// without vpc_options, an EKS public API endpoint); Allowed then holds
	// the address ranges admitted.
	Managed bool
	Allowed []netip.Prefix
	// Gate, when set, says what authenticates every request the endpoint
	// takes and what exposure remains: a search domain whose access policy
	// names its principals, or whose fine-grained access control is on, is
	// at most medium; an EKS or AKS API, which takes only credentials the
	// cluster trusts, at most high (GateSev; gated).
	Gate    string
	GateSev Severity
	// Fix, when set, is the remedy for the endpoint's exposure, naming its
	// own settings (Finding.Fix), in place of its rule's.
	Fix string
	// InVPC: a managed endpoint that also answers on interfaces in
	// Subnets, behind SGs (an EKS API with public and private access):
	// the internet reaches it by Allowed, its networks by those
	// interfaces. InVPCAssumed says why it is read so when that is not
	// known statically.
	InVPC        bool
	InVPCAssumed string
	// AllowedAssumed, when set, says why the endpoint is read as admitting
	// every address besides Allowed: an element of the list Allowed was
	// read from is not known statically.
	AllowedAssumed string
	// AllowedBounded holds, when every such element is a range of a known
	// prefix length somewhere (tf.Unknown.Bits), those lengths: the path
	// found through them is bounded (Result.Bound).
	AllowedBounded []int
	// Listens, when set, tells the ports the endpoint really listens on (a
	// load balancer's listeners); nil: any port may have a listener.
	Listens func(proto string, port int) bool
	// SourceOnly: it takes no connection at all (Listens admits no port);
	// it only opens connections, as a member of its groups.
	SourceOnly bool
	// Interior, when set, says why the endpoint never has a public
	// address, whatever its subnet (an EFS mount target): no internet
	// address reaches it, only those its VPC routes to it.
	Interior string
	// PublicOnly: the endpoint answers at its public address alone (a
	// SQL managed instance's public data endpoint), not at its subnet's:
	// its own and peered networks are no sources of it (lateral,
	// --reach), only the internet is.
	PublicOnly bool
	// Reaches, when not nil, holds the only ranges a source may open
	// connections to (a Client VPN endpoint's authorization rules).
	Reaches []netip.Prefix
	// ListensOn says what Listens admits where Ports does not (a range
	// among a task's host ports), for the hop that refuses a port.
	ListensOn string
	// PortsAssumed says why the ports the endpoint answers on are not
	// known statically: it is read as answering on every port, and a path
	// found to it is not proven.
	PortsAssumed string
	// AppPorts: Ports are an application's own (an ECS task's host
	// ports), not an admin or data-store service's: reached from the
	// internet, one makes the endpoint internet-facing, and is an
	// exposed port only when it is a known service's (portName).
	AppPorts bool
	// SGsUnknown says why the endpoint's security groups could not be
	// evaluated; it is then read as admitting everything.
	SGsUnknown string
	// Azure: filtered by network security groups (on its subnets and in
	// NSGs, on its network interfaces) rather than security groups.
	Azure bool
	// PrivateIPs, when not nil, are all the private addresses an Azure
	// machine may have (each interface's static one): an NSG allow whose
	// destination holds none of them does not apply to it.
	PrivateIPs []netip.Addr
	NSGs       []*NACL
	// StandardIP: every public IP of the machine is of the Standard SKU,
	// which admits nothing from the internet unless an NSG allows it.
	StandardIP bool
	// Families, when set, are the address families of an Azure machine's
	// public IPs (ip_version): the internet reaches it from those only.
	Families []netip.Prefix
	// InternetPorts, when set, are the only ports the internet reaches
	// (a machine reached through a load balancer's rules only).
	InternetPorts func(proto string, port int) bool
	// Forwarded: the ports InternetPorts admits, as public load
	// balancers forward them (anyPort when not known statically), each
	// with the rules that do, and their balancers.
	Forwarded map[lbPort][]lbVia
	// Balanced: the internet reaches it only through load-balancing
	// rules of a balancer (no public address, no NAT rule of its own):
	// it sits behind a load balancer, which internet-facing rules ask for.
	Balanced bool
	// Unplaced says why an endpoint whose subnets are not in the scanned
	// code is where it is, when more is known than that (an instance that
	// names no subnet is in a default subnet); "" for the general reading.
	Unplaced string
	// SubnetsUnknown, when set, says why the endpoint may be in a subnet
	// besides Subnets: a subnet list holds an element not known
	// statically. It may be any of SubnetsMaybe, or, when SubnetsAny,
	// any subnet at all, read as one outside the scanned code (an Azure
	// endpoint's any subnet is every Azure subnet, in SubnetsMaybe).
	SubnetsUnknown string
	SubnetsMaybe   []*Subnet
	SubnetsAny     bool
	// For is the resource a private endpoint reaches, or the instance
	// that attaches a network interface, "" for other endpoints: --reach
	// on that resource lists what reaches it this way.
	For string
	// OutsideVPC: the endpoint is in no VPC by design (a Lightsail
	// instance), where Unplaced says; that is not an assumption.
	OutsideVPC bool
	// HTTPPorts holds a load balancer's listener ports that speak HTTP
	// or HTTPS (every listener of an application load balancer), each
	// with its protocol ("HTTP", "HTTPS", or "HTTP or HTTPS" where not
	// known statically): what answers there is a web application,
	// whatever the port's number.
	HTTPPorts map[int]string
	// Forwards holds, for a network load balancer, the ports of the
	// target groups each listener port forwards to, where known: what
	// the internet reaches there is the targets' service on those ports.
	Forwards map[int][]int
	// ForwardBlocked holds the listener ports of a network load balancer
	// whose targets all turn the internet away, with why (nlbForwarding).
	ForwardBlocked map[int]string
	// Published: the gateways that publish the endpoint to the internet
	// (Azure Firewall DNAT rules, Application Gateways); see Publish.
	Published []Publish
	Res       *tf.Resource
}

func (e *Endpoint) listenText() string {
	if e.ListensOn != "" {
		return "it listens on " + e.ListensOn
	}
	if len(e.Ports) == 0 {
		return "it has no listener in the project"
	}
	return "it listens on " + joinInts(e.Ports)
}

// joinInts lists ports, comma separated.
func joinInts(ports []int) string {
	ps := make([]string, len(ports))
	for i, p := range ports {
		ps[i] = fmt.Sprint(p)
	}
	return strings.Join(ps, ", ")
}

func (m *Model) lookup(ref string) *tf.Resource {
	r := m.byRef[ref]
	if r == nil {
		m.miss("", ref)
	}
	return r
}

// addr maps a reference (an ID, an address or a name) to the address of the
// resource it names, or returns ref itself when it names nothing known.
func (m *Model) addr(ref string) string {
	if r := m.lookup(ref); r != nil {
		return r.Address
	}
	return ref
}

// miss records that ref, looked up as a resource of type typ ("" for any),
// names none the model knows, when ref may be a name: not empty, not an
// address, an ARN, an Azure resource ID, an AWS ID (vpc-0a1b2c3d) or an
// address range.
func (m *Model) miss(typ, ref string) {
	if ref == "" || m.missed[typ] || m.missed[""] || !mayBeName(ref) {
		return
	}
	if m.missed == nil {
		m.missed = map[string]bool{}
	}
	m.missed[typ] = true
}

// awsID matches the IDs AWS gives its resources.
var awsID = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)?-[0-9a-f]{8}([0-9a-f]{9})?$`)

func mayBeName(ref string) bool {
	switch {
	case strings.HasPrefix(ref, "/"), strings.HasPrefix(ref, "arn:"), awsID.MatchString(ref):
		return false
	case strings.Contains(ref, "/") && strings.Count(ref, "/") == 1 && strings.ContainsAny(ref, ".:"):
		return false // an address range
	}
	// A resource's address (what a reference to its ID reads as).
	typ, _, ok := strings.Cut(strings.TrimPrefix(ref, "data."), ".")
	return !strings.HasPrefix(ref, "module.") && !(ok && strings.Contains(typ, "_"))
}

// nameMissed reports whether a name the model looked up may be that of a
// resource at address a (of any resource when a names none).
func (m *Model) nameMissed(a string) bool {
	if m.missed[""] {
		return true
	}
	if r := m.byRef[a]; r != nil {
		return m.missed[r.Type]
	}
	return len(m.missed) > 0
}

// ref returns what attribute k of vals refers to: its value, or, when that
// is not known statically but its expression can only name one resource
// instance of the project (virtual_network_name =
// azurerm_virtual_network.main.name, whose name is made from a variable
// without a value), that instance's address. "" when it may be anything.
func (m *Model) ref(vals map[string]any, k string) string {
	if !unknown(vals, k) {
		return str(vals, k)
	}
	from := unknownFrom(vals, k)
	if len(from) != 1 {
		return ""
	}
	var only *tf.Resource
	for _, r := range m.Resources {
		if resourceOf(r) == from[0] {
			if only != nil {
				return "" // one of several instances
			}
			only = r
		}
	}
	if only == nil {
		return ""
	}
	return only.Address
}

// addrOf is addr for a reference to a resource of type typ: a name is
// looked up among that type's resources first.
func (m *Model) addrOf(typ, ref string) string {
	if r := m.byRef[ref]; r != nil && r.Type == typ {
		return r.Address
	}
	if r := m.byName[[2]string{typ, ref}]; r != nil {
		return r.Address
	}
	if r := m.byRef[ref]; r != nil {
		return r.Address
	}
	m.miss(typ, ref)
	return ref
}

func (m *Model) note(r *tf.Resource, format string, args ...any) {
	n := tf.Note{Pos: r.Pos, Address: r.Address, Msg: fmt.Sprintf(format, args...)}
	if m.noted[n] {
		return // said once of a resource, however many times it is met
	}
	if m.noted == nil {
		m.noted = map[tf.Note]bool{}
	}
	m.noted[n] = true
	m.Notes = append(m.Notes, n)
}

// allowFrom adds to a managed endpoint's Allowed the ranges of an
// allow-list read from attr (strs). An element not known statically may be
// any range: the endpoint is then read as admitting every address too
// (AllowedAssumed), and said so; bits, when not nil, are the prefix lengths
// of such elements that are ranges of known size (unknownBits).
func (m *Model) allowFrom(e *Endpoint, attr string, ranges []string, unk bool, bits []int) {
	for _, c := range ranges {
		if p, ok := m.prefix(e.Res, attr, c); ok {
			e.Allowed = append(e.Allowed, p)
		}
	}
	switch {
	case unk && bits != nil:
		e.AllowedAssumed = fmt.Sprintf("%s has an element not known statically but for its length (%s): assumed to be anywhere", attr, boundedText(bits))
		e.AllowedBounded = bits
		m.note(e.Res, "%s", e.AllowedAssumed)
	case unk:
		e.AllowedAssumed = attr + " has an element not known statically: assumed to admit every address"
		m.note(e.Res, "%s", e.AllowedAssumed)
	}
}

func (m *Model) prefix(r *tf.Resource, what, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		m.note(r, "%s %q is not a CIDR block", what, s)
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// Build makes the model of the resources, read with the providers' newest
// versions.
func Build(res []tf.Resource) *Model {
	return build(&tf.Project{Resources: res})
}

// BuildProject makes the model of a project's resources, read with the
// provider versions it runs (a default that changed with one).
func BuildProject(p *tf.Project) *Model {
	return build(p)
}

func build(p *tf.Project) *Model {
	res, providers := p.Resources, p.Providers
	m := &Model{byRef: map[string]*tf.Resource{}, byName: map[[2]string]*tf.Resource{}, vpcs: map[string]*VPC{}, subnets: map[string]*Subnet{},
		tables: map[string]*RouteTable{}, sgs: map[string]*SG{}, nacls: map[string]*NACL{},
		igws: map[string]string{}, eips: map[string]bool{}, sgUsed: map[string]bool{}, sgRef: map[string]bool{},
		tgws: map[string]map[string]bool{}, providers: providers, configs: p.Configs}
	byType := map[string][]*tf.Resource{}
	for i := range res {
		r := &res[i]
		m.Resources = append(m.Resources, r)
		byType[r.Type] = append(byType[r.Type], r)
		m.byRef[r.Address] = r
		if id := str(r.Values, "id"); id != "" {
			m.byRef[id] = r
		}
		if r.ImportID != "" {
			m.byRef[r.ImportID] = r // the ID of the object it adopts
		}
		if r.Type == "aws_networkfirewall_firewall" {
			m.byRef[tf.NetworkFirewallEndpoint(r.Address)] = r // its endpoints, which routes name
		}
		if arn := str(r.Values, "arn"); arn != "" {
			m.byRef[arn] = r
		}
		for _, k := range []string{"name", "bucket"} {
			if n := str(r.Values, k); n != "" {
				if _, taken := m.byRef[n]; !taken {
					m.byRef[n] = r
				}
				if k == "name" {
					m.byName[[2]string{r.Type, n}] = r
				}
			}
		}
	}
	for typ, rs := range azapiAsAzurerm(byType["azapi_resource"], byType["azapi_update_resource"]) {
		byType[typ] = append(byType[typ], rs...)
	}
	// Synthetic IDs of the defaults every VPC has (see tf's reader).
	for _, r := range byType["aws_vpc"] {
		v := &VPC{Addr: r.Address, Res: r}
		if s := str(r.Values, "cidr_block"); s != "" {
			if p, ok := m.prefix(r, "cidr_block", s); ok {
				v.CIDRs = append(v.CIDRs, p)
			}
		}
		m.VPCs = append(m.VPCs, v)
		m.vpcs[r.Address] = v
	}
	m.buildDefaultVPC(byType)
	for _, r := range byType["aws_vpc_ipv4_cidr_block_association"] {
		if v := m.vpcs[m.addr(str(r.Values, "vpc_id"))]; v != nil {
			if p, ok := m.prefix(r, "cidr_block", str(r.Values, "cidr_block")); ok {
				v.CIDRs = append(v.CIDRs, p)
			}
		}
	}
	for _, r := range byType["aws_internet_gateway"] {
		m.igws[r.Address] = m.igwVPC(r)
	}
	for _, r := range byType["aws_internet_gateway_attachment"] {
		m.igws[m.addr(str(r.Values, "internet_gateway_id"))] = m.igwVPC(r)
	}
	for _, r := range byType["aws_subnet"] {
		s := &Subnet{Addr: r.Address, VPC: m.vpcs[m.addr(str(r.Values, "vpc_id"))],
			MapPublicIP: boolean(r.Values, "map_public_ip_on_launch", false),
			AssignIPv6:  boolean(r.Values, "assign_ipv6_address_on_creation", false), Res: r}
		// IPv6-only subnets have no cidr_block; an unknown one is noted by
		// the reader.
		for _, k := range []string{"cidr_block", "ipv6_cidr_block"} {
			if c := str(r.Values, k); c != "" && !s.CIDR.IsValid() {
				if p, ok := m.prefix(r, k, c); ok {
					s.CIDR = p
				}
			}
		}
		if s.VPC == nil && !unknown(r.Values, "vpc_id") {
			// One not known statically is noted as such by the reader.
			m.note(r, "subnet's VPC %q is not in the project", str(r.Values, "vpc_id"))
		}
		m.Subnets = append(m.Subnets, s)
		m.subnets[r.Address] = s
	}
	for _, r := range byType["aws_ec2_transit_gateway_vpc_attachment"] {
		tgw := m.addr(str(r.Values, "transit_gateway_id"))
		if m.tgws[tgw] == nil {
			m.tgws[tgw] = map[string]bool{}
		}
		m.tgws[tgw][m.addr(str(r.Values, "vpc_id"))] = true
	}
	m.buildTGWPeerings(byType)
	m.buildTGWTables(byType)
	m.buildRoutes(byType)
	m.buildVPNRoutes(byType)
	m.buildPeerings(byType)
	m.buildSGs(byType)
	m.buildNACLs(byType)
	m.buildEndpoints(byType)
	m.placeUnplaced()
	m.frontDoors(byType)
	m.buildAzure(byType)
	m.rejectSubnetsOutside(byType)
	m.rejectDefaultPlaced(byType)
	m.rejectStringLists(byType)
	m.buildFlowLogs(byType["aws_flow_log"])
	m.noteUnmodelled(m.Resources)
	m.byType = byType
	return m
}

func vpcDefault(vpcAddr, what string) string { return vpcAddr + ":" + what }

func (m *Model) buildPeerings(byType map[string][]*tf.Resource) {
	for _, r := range byType["aws_vpc_peering_connection"] {
		p := &Peering{Addr: r.Address, A: m.vpcs[m.addr(str(r.Values, "vpc_id"))],
			B: m.vpcs[m.addr(str(r.Values, "peer_vpc_id"))], Res: r}
		if p.A == nil || p.B == nil {
			m.note(r, "a peered VPC is not in the project; the peering is read one-sided")
		}
		m.Peerings = append(m.Peerings, p)
	}
}
