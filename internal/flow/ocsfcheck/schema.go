package ocsfcheck

// The OCSF 1.3.0 facts moat's records are checked against, written here
// from the published schema (schema.ocsf.io/1.3.0, the compiled export):
// for each class moat writes, every attribute the class defines (with the
// profile that adds it, if any), its requirement, type and enumeration;
// for each object moat fills, its attributes and their types, and the
// attributes it requires. Attributes of other objects are not listed: an
// object moat does not write is reported as unknown rather than passed.

// Requirement levels.
const (
	required    = "required"
	recommended = "recommended"
	optional    = "optional"
)

// Profiles.
const (
	profSecurityControl = "security_control"
	profHost            = "host"
	profCloud           = "cloud"
	profNetworkProxy    = "network_proxy"
	profLoadBalancer    = "load_balancer"
	profOSINT           = "osint"
)

// attr is one attribute: its type ("integer", "long", "string",
// "timestamp", "boolean", "float", "json", "object:NAME"; a leading "[]"
// for an array), requirement, the profile that adds it ("" for the class
// itself) and, for enumerations, the values allowed.
type attr struct {
	typ     string
	req     string
	profile string
	enum    []int
}

// Enumerations shared by several classes.
var (
	severityIDs    = []int{0, 1, 2, 3, 4, 5, 6, 99}
	eventStatusIDs = []int{0, 1, 2, 99}
	actionIDs      = []int{0, 1, 2, 99}
	dispositionIDs = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 99}
)

// baseEvent is the Base Event's attributes, which every class has.
func baseEvent() map[string]attr {
	return map[string]attr{
		"activity_id":     {typ: "integer", req: required},
		"activity_name":   {typ: "string", req: optional},
		"category_name":   {typ: "string", req: optional},
		"category_uid":    {typ: "integer", req: required},
		"class_name":      {typ: "string", req: optional},
		"class_uid":       {typ: "integer", req: required},
		"count":           {typ: "integer", req: optional},
		"duration":        {typ: "long", req: optional},
		"end_time":        {typ: "timestamp", req: optional},
		"enrichments":     {typ: "[]object:enrichment", req: optional},
		"message":         {typ: "string", req: recommended},
		"metadata":        {typ: "object:metadata", req: required},
		"observables":     {typ: "[]object:observable", req: recommended},
		"raw_data":        {typ: "string", req: optional},
		"severity":        {typ: "string", req: optional},
		"severity_id":     {typ: "integer", req: required, enum: severityIDs},
		"start_time":      {typ: "timestamp", req: optional},
		"status":          {typ: "string", req: recommended},
		"status_code":     {typ: "string", req: recommended},
		"status_detail":   {typ: "string", req: recommended},
		"status_id":       {typ: "integer", req: recommended, enum: eventStatusIDs},
		"time":            {typ: "timestamp", req: required},
		"timezone_offset": {typ: "integer", req: recommended},
		"type_name":       {typ: "string", req: optional},
		"type_uid":        {typ: "long", req: required},
		"unmapped":        {typ: "json", req: optional},
		// Profiles every class here takes.
		"api":    {typ: "object:api", req: optional, profile: profCloud},
		"cloud":  {typ: "object:cloud", req: required, profile: profCloud},
		"osint":  {typ: "[]object:osint", req: required, profile: profOSINT},
		"actor":  {typ: "object:actor", req: optional, profile: profHost},
		"device": {typ: "object:device", req: recommended, profile: profHost},
	}
}

// securityControl is what the security_control profile adds.
func securityControl() map[string]attr {
	return map[string]attr{
		"action":         {typ: "string", req: optional, profile: profSecurityControl},
		"action_id":      {typ: "integer", req: required, profile: profSecurityControl, enum: actionIDs},
		"attacks":        {typ: "[]object:attack", req: optional, profile: profSecurityControl},
		"authorizations": {typ: "[]object:authorization", req: optional, profile: profSecurityControl},
		"disposition":    {typ: "string", req: optional, profile: profSecurityControl},
		"disposition_id": {typ: "integer", req: recommended, profile: profSecurityControl, enum: dispositionIDs},
		"firewall_rule":  {typ: "object:firewall_rule", req: optional, profile: profSecurityControl},
		"malware":        {typ: "[]object:malware", req: optional, profile: profSecurityControl},
	}
}

// networkCategory is what the Network Activity category's classes share.
func networkCategory() map[string]attr {
	return map[string]attr{
		"app_name":              {typ: "string", req: optional},
		"connection_info":       {typ: "object:network_connection_info", req: recommended},
		"dst_endpoint":          {typ: "object:network_endpoint", req: required},
		"src_endpoint":          {typ: "object:network_endpoint", req: recommended},
		"ja4_fingerprint_list":  {typ: "[]object:ja4_fingerprint", req: optional},
		"proxy":                 {typ: "object:network_proxy", req: recommended},
		"tls":                   {typ: "object:tls", req: optional},
		"load_balancer":         {typ: "object:load_balancer", req: recommended, profile: profLoadBalancer},
		"proxy_connection_info": {typ: "object:network_connection_info", req: recommended, profile: profNetworkProxy},
		"proxy_endpoint":        {typ: "object:network_proxy", req: optional, profile: profNetworkProxy},
		"proxy_http_request":    {typ: "object:http_request", req: optional, profile: profNetworkProxy},
		"proxy_http_response":   {typ: "object:http_response", req: optional, profile: profNetworkProxy},
		"proxy_tls":             {typ: "object:tls", req: recommended, profile: profNetworkProxy},
		"proxy_traffic":         {typ: "object:network_traffic", req: recommended, profile: profNetworkProxy},
	}
}

// class is one event class.
type class struct {
	name     string
	category int
	attrs    map[string]attr
}

func merge(ms ...map[string]attr) map[string]attr {
	out := map[string]attr{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// classes are the classes moat writes, by class_uid.
var classes = map[int]class{
	4001: {name: "network_activity", category: 4, attrs: merge(baseEvent(), securityControl(), networkCategory(), map[string]attr{
		"activity_id": {typ: "integer", req: required, enum: []int{0, 1, 2, 3, 4, 5, 6, 7, 99}},
		"traffic":     {typ: "object:network_traffic", req: recommended},
		"url":         {typ: "object:url", req: recommended},
	})},
	4002: {name: "http_activity", category: 4, attrs: merge(baseEvent(), securityControl(), networkCategory(), map[string]attr{
		"activity_id":   {typ: "integer", req: required, enum: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 99}},
		"file":          {typ: "object:file", req: optional},
		"http_cookies":  {typ: "[]object:http_cookie", req: recommended},
		"http_request":  {typ: "object:http_request", req: required},
		"http_response": {typ: "object:http_response", req: required},
		"http_status":   {typ: "integer", req: recommended},
		"traffic":       {typ: "object:network_traffic", req: optional},
	})},
	2004: {name: "detection_finding", category: 2, attrs: merge(baseEvent(), securityControl(), map[string]attr{
		"activity_id":      {typ: "integer", req: required, enum: []int{0, 1, 2, 3, 99}},
		"comment":          {typ: "string", req: optional},
		"confidence":       {typ: "string", req: optional},
		"confidence_id":    {typ: "integer", req: recommended, enum: []int{0, 1, 2, 3, 99}},
		"confidence_score": {typ: "integer", req: optional},
		"evidences":        {typ: "[]object:evidences", req: recommended},
		"finding_info":     {typ: "object:finding_info", req: required},
		"impact":           {typ: "string", req: optional},
		"impact_id":        {typ: "integer", req: optional, enum: []int{0, 1, 2, 3, 4, 99}},
		"impact_score":     {typ: "integer", req: optional},
		"remediation":      {typ: "object:remediation", req: optional},
		"resources":        {typ: "[]object:resource_details", req: recommended},
		"risk_details":     {typ: "string", req: optional},
		"risk_level":       {typ: "string", req: optional},
		"risk_level_id":    {typ: "integer", req: optional, enum: []int{0, 1, 2, 3, 4, 99}},
		"risk_score":       {typ: "integer", req: optional},
		"status":           {typ: "string", req: optional},
		"status_id":        {typ: "integer", req: recommended, enum: []int{0, 1, 2, 3, 4, 99}},
		"vulnerabilities":  {typ: "[]object:vulnerability", req: optional},
	})},
}

// objects are the objects moat fills.
var objects = map[string]map[string]attr{
	"metadata": {
		"correlation_uid": {typ: "string", req: optional},
		"event_code":      {typ: "string", req: optional},
		"labels":          {typ: "[]string", req: optional},
		"log_name":        {typ: "string", req: recommended},
		"log_provider":    {typ: "string", req: recommended},
		"logged_time":     {typ: "timestamp", req: optional},
		"modified_time":   {typ: "timestamp", req: optional},
		"original_time":   {typ: "string", req: recommended},
		"processed_time":  {typ: "timestamp", req: optional},
		"product":         {typ: "object:product", req: required},
		"profiles":        {typ: "[]string", req: optional},
		"sequence":        {typ: "integer", req: optional},
		"tenant_uid":      {typ: "string", req: optional},
		"uid":             {typ: "string", req: optional},
		"version":         {typ: "string", req: required},
	},
	"product": {
		"cpe_name":    {typ: "string", req: optional},
		"feature":     {typ: "object:feature", req: optional},
		"lang":        {typ: "string", req: optional},
		"name":        {typ: "string", req: recommended},
		"path":        {typ: "string", req: optional},
		"uid":         {typ: "string", req: recommended},
		"url_string":  {typ: "string", req: optional},
		"vendor_name": {typ: "string", req: required},
		"version":     {typ: "string", req: recommended},
	},
	"feature": {
		"name":    {typ: "string", req: recommended},
		"uid":     {typ: "string", req: recommended},
		"version": {typ: "string", req: recommended},
	},
	"network_endpoint": {
		"domain":         {typ: "string", req: optional},
		"hostname":       {typ: "string", req: recommended},
		"instance_uid":   {typ: "string", req: recommended},
		"interface_name": {typ: "string", req: recommended},
		"interface_uid":  {typ: "string", req: recommended},
		"ip":             {typ: "string", req: recommended},
		"mac":            {typ: "string", req: optional},
		"name":           {typ: "string", req: recommended},
		"port":           {typ: "integer", req: recommended},
		"subnet_uid":     {typ: "string", req: optional},
		"svc_name":       {typ: "string", req: recommended},
		"type":           {typ: "string", req: optional},
		"type_id":        {typ: "integer", req: recommended},
		"uid":            {typ: "string", req: recommended},
		"vpc_uid":        {typ: "string", req: optional},
		"zone":           {typ: "string", req: optional},
	},
	"network_connection_info": {
		"boundary":      {typ: "string", req: optional},
		"boundary_id":   {typ: "integer", req: recommended},
		"direction":     {typ: "string", req: optional},
		"direction_id":  {typ: "integer", req: required, enum: []int{0, 1, 2, 3, 99}},
		"protocol_name": {typ: "string", req: recommended},
		"protocol_num":  {typ: "integer", req: recommended},
		"protocol_ver":  {typ: "string", req: optional},
		"tcp_flags":     {typ: "integer", req: optional},
		"uid":           {typ: "string", req: recommended},
	},
	"network_traffic": {
		"bytes":       {typ: "long", req: recommended},
		"bytes_in":    {typ: "long", req: recommended},
		"bytes_out":   {typ: "long", req: recommended},
		"packets":     {typ: "long", req: recommended},
		"packets_in":  {typ: "long", req: recommended},
		"packets_out": {typ: "long", req: recommended},
	},
	"tls": {
		"cipher":  {typ: "string", req: recommended},
		"sni":     {typ: "string", req: recommended},
		"version": {typ: "string", req: required},
	},
	"firewall_rule": {
		"category":  {typ: "string", req: optional},
		"condition": {typ: "string", req: optional},
		"desc":      {typ: "string", req: optional},
		"name":      {typ: "string", req: recommended},
		"type":      {typ: "string", req: optional},
		"uid":       {typ: "string", req: recommended},
		"version":   {typ: "string", req: optional},
	},
	"http_request": {
		"args":            {typ: "string", req: optional},
		"http_headers":    {typ: "[]object:http_header", req: recommended},
		"http_method":     {typ: "string", req: recommended},
		"length":          {typ: "integer", req: optional},
		"referrer":        {typ: "string", req: recommended},
		"uid":             {typ: "string", req: recommended},
		"url":             {typ: "object:url", req: recommended},
		"user_agent":      {typ: "string", req: recommended},
		"version":         {typ: "string", req: recommended},
		"x_forwarded_for": {typ: "[]string", req: optional},
	},
	"http_header": {
		"name":  {typ: "string", req: required},
		"value": {typ: "string", req: required},
	},
	"http_response": {
		"code":         {typ: "integer", req: required},
		"content_type": {typ: "string", req: optional},
		"latency":      {typ: "integer", req: optional},
		"length":       {typ: "integer", req: optional},
		"message":      {typ: "string", req: optional},
		"status":       {typ: "string", req: optional},
	},
	"url": {
		"domain":       {typ: "string", req: optional},
		"hostname":     {typ: "string", req: recommended},
		"path":         {typ: "string", req: recommended},
		"port":         {typ: "integer", req: recommended},
		"query_string": {typ: "string", req: recommended},
		"scheme":       {typ: "string", req: recommended},
		"subdomain":    {typ: "string", req: optional},
		"url_string":   {typ: "string", req: recommended},
	},
	"finding_info": {
		"analytic":        {typ: "object:analytic", req: recommended},
		"created_time":    {typ: "timestamp", req: optional},
		"data_sources":    {typ: "[]string", req: optional},
		"desc":            {typ: "string", req: optional},
		"first_seen_time": {typ: "timestamp", req: optional},
		"last_seen_time":  {typ: "timestamp", req: optional},
		"modified_time":   {typ: "timestamp", req: optional},
		"src_url":         {typ: "string", req: optional},
		"title":           {typ: "string", req: recommended},
		"types":           {typ: "[]string", req: optional},
		"uid":             {typ: "string", req: required},
	},
	"analytic": {
		"category": {typ: "string", req: optional},
		"desc":     {typ: "string", req: optional},
		"name":     {typ: "string", req: recommended},
		"type":     {typ: "string", req: optional},
		"type_id":  {typ: "integer", req: required, enum: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 99}},
		"uid":      {typ: "string", req: recommended},
		"version":  {typ: "string", req: optional},
	},
	"observable": {
		"name":    {typ: "string", req: required},
		"type":    {typ: "string", req: optional},
		"type_id": {typ: "integer", req: required},
		"value":   {typ: "string", req: optional},
	},
}

func init() {
	// Network Proxy Endpoint (proxy_endpoint) extends Network Endpoint and
	// adds no attribute of its own.
	objects["network_proxy"] = objects["network_endpoint"]
}
