//go:build linux

package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// NFLOG (nfnetlink_log) wire constants, from linux/netfilter/nfnetlink_log.h.
const (
	nfnlSubsysULOG  = 4
	nfulnlMsgPacket = 0
	nfulnlMsgConfig = 1

	nfulaCfgCmd     = 1
	nfulaCfgMode    = 2
	nfulaCfgTimeout = 4
	nfulaCfgQThresh = 5

	nfulnlCfgCmdBind = 1
	nfulnlCopyPacket = 2

	nfulaPayload = 9
	nfulaPrefix  = 10
	nfulaUID     = 11
)

// logEvent is one packet the table logged.
type logEvent struct {
	in       bool   // the input chain logged it
	action   string // "drop" or "audit"
	proto    Proto
	protoNum int
	src, dst netip.AddrPort
	uid      int // owner of the local socket, -1 when unknown
}

// Log is the table's log group, bound: packets the table logs from the
// moment OpenLog returns wait in the socket until Run reads them. Bind it
// before the first Apply, or what the table logs in between (an audit
// mode's would-drops, an enforce mode's drops) is lost to a group nobody
// reads.
type Log struct {
	m *Manager
	c *netlink.Conn
}

// OpenLog binds Config.LogGroup in the Manager's network namespace.
func (m *Manager) OpenLog() (*Log, error) {
	group := m.cfg.LogGroup
	if group == 0 {
		group = DefaultLogGroup
	}
	cfg := &netlink.Config{}
	if m.cfg.NetNS != "" {
		f, err := os.Open(m.cfg.NetNS)
		if err != nil {
			return nil, fmt.Errorf("firewall: network namespace: %w", err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("firewall: nflog: %w", err)
	}
	if err := bindLog(c, group); err != nil {
		c.Close()
		return nil, err
	}
	return &Log{m: m, c: c}, nil
}

// Run reads the log until ctx ends, then closes it, and writes a flow
// record for each would-drop (audit) or dropped (enforce) connection;
// repeats of one connection attempt (SYN retries) within a few seconds
// are recorded once.
func (l *Log) Run(ctx context.Context) error {
	c, m := l.c, l.m
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	rec := newRecorder(m)
	for {
		msgs, err := c.Receive()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var oe *netlink.OpError
			if errors.As(err, &oe) && errors.Is(oe.Err, unix.ENOBUFS) {
				m.log.Warn("firewall: log overrun: some would-drop packets were not recorded")
				continue
			}
			return fmt.Errorf("firewall: nflog: %w", err)
		}
		for _, msg := range msgs {
			if msg.Header.Type != netlink.HeaderType(nfnlSubsysULOG<<8|nfulnlMsgPacket) {
				continue
			}
			if ev, ok := parseLog(msg.Data); ok {
				rec.record(ev)
			}
		}
	}
}

// bindLog binds c to group, copying the first 128 bytes of each packet
// and sending every packet at once (no batching).
func bindLog(c *netlink.Conn, group uint16) error {
	send := func(attrs []netlink.Attribute) error {
		b, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			return err
		}
		hdr := []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, byte(group >> 8), byte(group)}
		_, err = c.Execute(netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysULOG<<8 | nfulnlMsgConfig), Flags: netlink.Request | netlink.Acknowledge},
			Data:   append(hdr, b...),
		})
		return err
	}
	mode := make([]byte, 6)
	binary.BigEndian.PutUint32(mode, 128)
	mode[4] = nfulnlCopyPacket
	one := binary.BigEndian.AppendUint32(nil, 1)
	if err := send([]netlink.Attribute{{Type: nfulaCfgCmd, Data: []byte{nfulnlCfgCmdBind}}}); err != nil {
		return fmt.Errorf("firewall: nflog: bind group %d: %w", group, err)
	}
	if err := send([]netlink.Attribute{{Type: nfulaCfgMode, Data: mode}, {Type: nfulaCfgTimeout, Data: one}, {Type: nfulaCfgQThresh, Data: one}}); err != nil {
		return fmt.Errorf("firewall: nflog: configure group %d: %w", group, err)
	}
	return nil
}

// parseLog reads one NFLOG packet message: our prefix, the uid of a local
// socket, and the addresses and ports from the copied headers.
func parseLog(data []byte) (logEvent, bool) {
	ev := logEvent{uid: -1}
	if len(data) < 4 {
		return ev, false
	}
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return ev, false
	}
	var payload []byte
	prefix := ""
	for ad.Next() {
		switch ad.Type() {
		case nfulaPrefix:
			prefix = strings.TrimRight(string(ad.Bytes()), "\x00")
		case nfulaPayload:
			payload = ad.Bytes()
		case nfulaUID:
			if b := ad.Bytes(); len(b) == 4 {
				ev.uid = int(binary.BigEndian.Uint32(b))
			}
		}
	}
	switch {
	case strings.HasPrefix(prefix, prefixIn):
		ev.in, ev.action = true, strings.TrimPrefix(prefix, prefixIn)
	case strings.HasPrefix(prefix, prefixOut):
		ev.action = strings.TrimPrefix(prefix, prefixOut)
	default:
		return ev, false // not ours
	}
	return ev, parsePacket(payload, &ev)
}

// parsePacket reads the network and transport headers of a copied packet.
func parsePacket(p []byte, ev *logEvent) bool {
	if len(p) < 1 {
		return false
	}
	var src, dst netip.Addr
	var l4 []byte
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return false
		}
		ihl := int(p[0]&0x0f) * 4
		if ihl < 20 || len(p) < ihl {
			return false
		}
		ev.protoNum = int(p[9])
		src, _ = netip.AddrFromSlice(p[12:16])
		dst, _ = netip.AddrFromSlice(p[16:20])
		l4 = p[ihl:]
	case 6:
		if len(p) < 40 {
			return false
		}
		ev.protoNum = int(p[6])
		src, _ = netip.AddrFromSlice(p[8:24])
		dst, _ = netip.AddrFromSlice(p[24:40])
		l4 = p[40:]
	default:
		return false
	}
	var sport, dport uint16
	switch ev.protoNum {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP:
		if len(l4) >= 4 {
			sport, dport = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		}
		ev.proto = TCP
		if ev.protoNum == unix.IPPROTO_UDP {
			ev.proto = UDP
		}
	}
	ev.src, ev.dst = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	return true
}
