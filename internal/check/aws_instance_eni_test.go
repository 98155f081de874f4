package check

import (
	"context"
	"testing"
)

// TestReachInstanceThroughItsInterfaces: an instance whose interfaces are
// resources of their own (its primary one by a network_interface block,
// with an Elastic IP; another by an attachment). --reach on the instance
// said no source could reach it, though the internet reaches its primary
// interface on SSH. It now lists what reaches each interface it attaches.
func TestReachInstanceThroughItsInterfaces(t *testing.T) {
	acc, err := Reachability(context.Background(), Config{Paths: []string{"testdata/aws/instance-eni"}}, "aws_instance.vpn")
	if err != nil {
		t.Fatal(err)
	}
	ssh, exporter := false, false
	for _, a := range acc {
		if a.Source == "internet" && a.Proto == "tcp" && a.Port == 22 {
			ssh = true
		}
		if a.Source != "internet" && a.Proto == "tcp" && a.Port == 9100 {
			exporter = true
		}
	}
	if !ssh || !exporter {
		t.Errorf("internet on SSH %v, the VPC on 9100 %v: %+v, want both", ssh, exporter, acc)
	}
}
