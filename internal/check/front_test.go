package check

import (
	"strings"
	"testing"
)

// Private services reached only through API Gateway VPC links and a
// CloudFront VPC origin: each is reached from the internet through its
// front door and the balancer in between, on the port the balancer
// forwards to; a PRIVATE REST API publishes nothing.
func TestFrontDoorsPublishPrivateBackends(t *testing.T) {
	m := model(t, "testdata/paths/front-doors")
	inet := m.Internet()
	for _, c := range []struct {
		addr  string
		port  int
		reach bool
		via   []string
	}{
		{"aws_instance.app", 8080, true, []string{"aws_api_gateway_rest_api.api", "aws_api_gateway_integration.app", "aws_lb.nlb", "aws_lb_listener.nlb"}},
		{"aws_lb.nlb", 80, true, []string{"aws_api_gateway_rest_api.api", "aws_api_gateway_integration.app"}},
		{"aws_instance.hidden", 8080, false, nil},
		{"aws_lb.nlb_private", 80, false, nil},
		{"aws_autoscaling_group.web", 8000, true, []string{"aws_apigatewayv2_api.http", "aws_apigatewayv2_integration.web", "aws_security_group.alb", "aws_lb_listener.alb", "aws_security_group.web"}},
		{"aws_autoscaling_group.web", 80, false, nil},
		{"aws_instance.origin", 443, true, []string{"aws_cloudfront_distribution.cdn", "aws_cloudfront_vpc_origin.origin", "aws_security_group.origin"}},
		{"aws_instance.origin", 80, false, nil},
		{"aws_ecs_service.tasks", 9000, true, []string{"aws_apigatewayv2_api.http", "aws_apigatewayv2_integration.tasks", "aws_security_group.tasks"}},
		{"aws_ecs_service.tasks", 22, false, nil},
	} {
		r := m.Reach(inet, endpoint(t, m, c.addr), "tcp", c.port)
		if r.Reachable != c.reach {
			t.Errorf("%s tcp %d: reachable %v, want %v: %v", c.addr, c.port, r.Reachable, c.reach, r.Path)
			continue
		}
		if !c.reach {
			continue
		}
		if len(r.Assumed) > 0 {
			t.Errorf("%s tcp %d: assumed %v, want a proven path", c.addr, c.port, r.Assumed)
		}
		var addrs []string
		for _, h := range r.Path {
			addrs = append(addrs, h.Addr)
		}
		at := 0
		for _, want := range c.via {
			i := indexFrom(addrs, at, want)
			if i < 0 {
				t.Errorf("%s tcp %d: path %v does not cross %s after hop %d", c.addr, c.port, addrs, want, at)
				break
			}
			at = i
		}
	}
	if r := m.Reach(inet, endpoint(t, m, "aws_lb.nlb"), "tcp", 80); len(r.Path) > 1 && !strings.Contains(r.Path[1].Detail, `authorization = "NONE"`) {
		t.Errorf("front hop %q does not say the method takes no authorization", r.Path[1].Detail)
	}

	t.Log("the world-open group of a target the API publishes is high (8080 is an application's port), with the API on its path")
	rep := run(t, "testdata/paths/front-doors")
	var got []Finding
	for _, f := range active(rep, RuleWorldOpenOther) {
		if f.Address == "aws_security_group.app" {
			got = append(got, f)
		}
	}
	if len(got) != 1 || got[0].Severity != High || len(got[0].Path) < 2 || got[0].Path[1].Addr != "aws_api_gateway_rest_api.api" {
		t.Errorf("want AWS-NET-011 high on aws_security_group.app through the API, got %+v", got)
	}
}

func indexFrom(s []string, from int, want string) int {
	for i := from; i < len(s); i++ {
		if s[i] == want {
			return i
		}
	}
	return -1
}

// A public instance whose group admits CloudFront's origin-facing servers
// alone is reached from the internet through the distribution whose custom
// origin it is, on the port its protocol policy uses; the group is not
// world-open, and the bucket CloudFront reads through an origin access
// control is not public.
func TestCloudFrontCustomOrigin(t *testing.T) {
	m := model(t, "testdata/paths/cloudfront-origin")
	origin := endpoint(t, m, "aws_instance.origin")
	r := m.Reach(m.Internet(), origin, "tcp", 80)
	if !r.Reachable || len(r.Assumed) > 0 || len(r.Path) < 3 || r.Path[1].Addr != "aws_cloudfront_distribution.cdn" {
		t.Fatalf("tcp 80: want a proven path through the distribution, got reachable %v, assumed %v, path %v", r.Reachable, r.Assumed, r.Path)
	}
	if !coversFamily(m.Internet().Set, r.From) {
		t.Errorf("tcp 80 through CloudFront from %s, want every internet address", m.describe(r.From))
	}
	if r := m.Reach(m.Internet(), origin, "tcp", 443); r.Reachable {
		t.Errorf("tcp 443 (an http-only origin, a group admitting 80): reachable through %v", r.Path)
	}
	rep := run(t, "testdata/paths/cloudfront-origin")
	if f := active(rep, RuleInternetFacing); len(f) != 1 || !strings.Contains(f[0].Message, "(through aws_cloudfront_distribution.cdn)") {
		t.Errorf("want AWS-NET-004 naming the distribution, got %+v", f)
	}
	for _, rule := range []string{RuleWorldOpen, RuleWorldOpenOther, RulePublicBucket} {
		if f := active(rep, rule); len(f) > 0 {
			t.Errorf("want no %s, got %+v", rule, f)
		}
	}
}

// A VPC link whose target is not known statically may lead to any network
// load balancer of the project: the path is found, and says so.
func TestFrontDoorUnknownLinkTarget(t *testing.T) {
	m := model(t, "testdata/paths/front-doors-unknown")
	r := m.Reach(m.Internet(), endpoint(t, m, "aws_instance.app"), "tcp", 8080)
	if !r.Reachable || !strings.Contains(strings.Join(r.Assumed, "; "), "target_arns not known statically: assumed to be any network load balancer of the project") {
		t.Errorf("want a path through the link that names its assumption, got reachable %v, assumed %v, path %v", r.Reachable, r.Assumed, r.Path)
	}
	if h := r.Path[1]; h.Addr != "aws_api_gateway_rest_api.api" || !strings.Contains(h.Detail, "EDGE endpoint, the default") {
		t.Errorf("front hop %v, want the API as an edge endpoint", h)
	}
}

// An HTTP API integration whose listener is not known statically may be
// any listener of the project: the balancer is published through it, and
// the path says so.
func TestFrontDoorUnknownIntegrationURI(t *testing.T) {
	m := model(t, "testdata/paths/front-doors-unknown")
	nlb := endpoint(t, m, "aws_lb.nlb")
	found := false
	for _, p := range nlb.Published {
		if p.Gateway != "aws_apigatewayv2_integration.app" {
			continue
		}
		found = true
		r, ok := m.reachPublishedOne(m.Internet(), nlb, p, 8080)
		if !ok || !strings.Contains(strings.Join(r.Assumed, "; "), "integration_uri not known statically: assumed to be any listener or Cloud Map service of the project") {
			t.Errorf("through the HTTP API: reached %v, assumed %v", ok, r.Assumed)
		}
	}
	if !found {
		t.Errorf("the HTTP API's integration publishes nothing on %s: %+v", nlb.Addr, nlb.Published)
	}
}

// endpointServiceBase is a private network load balancer forwarding
// PostgreSQL to an instance that admits its VPC, offered to other accounts
// as a VPC endpoint service (SERVICE is replaced).
const endpointServiceBase = `
variable "principals" { type = list(string) }
resource "aws_vpc" "v" { cidr_block = "10.0.0.0/16" }
resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.v.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_lb" "nlb" {
  internal           = true
  load_balancer_type = "network"
  subnets            = [aws_subnet.a.id]
}
resource "aws_lb_target_group" "tg" {
  port        = 5432
  protocol    = "TCP"
  vpc_id      = aws_vpc.v.id
  target_type = "instance"
}
resource "aws_lb_listener" "l" {
  load_balancer_arn = aws_lb.nlb.arn
  port              = 5432
  protocol          = "TCP"
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.tg.arn
  }
}
resource "aws_security_group" "db" {
  vpc_id = aws_vpc.v.id
  ingress {
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/16"]
  }
}
resource "aws_instance" "db" {
  subnet_id              = aws_subnet.a.id
  vpc_security_group_ids = [aws_security_group.db.id]
}
resource "aws_lb_target_group_attachment" "db" {
  target_group_arn = aws_lb_target_group.tg.arn
  target_id        = aws_instance.db.id
}
SERVICE`

// TestEndpointServiceOpenToEveryAccount: a VPC endpoint service that
// admits every AWS account (allowed_principals "*") without acceptance
// lets anyone connect to its network load balancer through PrivateLink,
// and on to what it forwards to. It was passed over in silence; the
// balancer's targets are now reached with the service on the path, while
// one limited to named accounts or needing acceptance is not.
func TestEndpointServiceOpenToEveryAccount(t *testing.T) {
	for _, tc := range []struct {
		name, service string
		want          []string // "" : no finding
	}{
		{"every account", `resource "aws_vpc_endpoint_service" "svc" {
  acceptance_required        = false
  allowed_principals         = ["*"]
  network_load_balancer_arns = [aws_lb.nlb.arn]
}`, []string{"aws_vpc_endpoint_service.svc", "every AWS account"}},
		{"principal resource", `resource "aws_vpc_endpoint_service" "svc" {
  acceptance_required        = false
  network_load_balancer_arns = [aws_lb.nlb.arn]
}
resource "aws_vpc_endpoint_service_allowed_principal" "all" {
  vpc_endpoint_service_id = aws_vpc_endpoint_service.svc.id
  principal_arn           = "*"
}`, []string{"aws_vpc_endpoint_service.svc", "every AWS account"}},
		{"principals unknown", `resource "aws_vpc_endpoint_service" "svc" {
  acceptance_required        = false
  allowed_principals         = var.principals
  network_load_balancer_arns = [aws_lb.nlb.arn]
}`, []string{"aws_vpc_endpoint_service.svc", "not known statically"}},
		{"named account", `resource "aws_vpc_endpoint_service" "svc" {
  acceptance_required        = false
  allowed_principals         = ["arn:aws:iam::123456789012:root"]
  network_load_balancer_arns = [aws_lb.nlb.arn]
}`, nil},
		{"acceptance", `resource "aws_vpc_endpoint_service" "svc" {
  acceptance_required        = true
  allowed_principals         = ["*"]
  network_load_balancer_arns = [aws_lb.nlb.arn]
}`, nil},
	} {
		rep := checkSource(t, strings.Replace(endpointServiceBase, "SERVICE", tc.service, 1))
		got := activeOn(rep, RuleExposedPort, "aws_instance.db")
		if tc.want == nil {
			if len(got) != 0 {
				t.Errorf("%s: %s on the target: %+v, want none", tc.name, RuleExposedPort, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s: %s on the target: %+v, want one", tc.name, RuleExposedPort, got)
			continue
		}
		text := got[0].Message
		for _, h := range got[0].Path {
			text += " | " + h.Addr + " " + h.Detail
		}
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: finding %q does not name %q", tc.name, text, w)
			}
		}
	}
}

// TestVPCLinkGroupTakesNoConnection: an HTTP API's VPC link has interfaces
// in its subnets that only open connections to the integration's targets,
// as a Lambda function's do; a group that admits the world and carries
// only them is medium, not high as a group attached to something that
// listens.
func TestVPCLinkGroupTakesNoConnection(t *testing.T) {
	rep := checkSource(t, `
resource "aws_vpc" "main" {
  cidr_block = "10.0.0.0/16"
}
resource "aws_subnet" "a" {
  vpc_id     = aws_vpc.main.id
  cidr_block = "10.0.1.0/24"
}
resource "aws_security_group" "link" {
  vpc_id = aws_vpc.main.id
  ingress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
resource "aws_apigatewayv2_vpc_link" "link" {
  name               = "link"
  security_group_ids = [aws_security_group.link.id]
  subnet_ids         = [aws_subnet.a.id]
}
`)
	got := activeOn(rep, RuleWorldOpen, "aws_security_group.link")
	if len(got) != 1 || got[0].Severity != Medium || !strings.Contains(got[0].Message, "aws_apigatewayv2_vpc_link.link, which takes no connection") {
		t.Errorf("%s on the VPC link's group: %+v, want one medium naming the link", RuleWorldOpen, got)
	}
}
