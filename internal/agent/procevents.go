package agent

import (
	"encoding/binary"
	"errors"
)

// The kernel's process events (the proc connector: a NETLINK_CONNECTOR
// socket in the CN_IDX_PROC group). Each datagram holds netlink messages;
// each message a connector header (struct cn_msg) and one struct
// proc_event, in the host's byte order. Only what tracking a session's
// processes needs is read: forks, execs, exits and the answer to the
// subscription. The datagrams come from the kernel, but they are parsed as
// if they did not: every length is checked before it is used.

const (
	nlmsgHdrLen    = 16
	cnMsgLen       = 20
	procEventHdr   = 16 // what, cpu, timestamp_ns
	cnIdxProc      = 1
	cnValProc      = 1
	procCnListen   = 1
	procEventNone  = 0x00000000
	procEventFork  = 0x00000001
	procEventExec  = 0x00000002
	procEventExit  = 0x80000000
	nlmsgDone      = 3
	nlmsgError     = 2
	nlmsgAlignment = 4
)

// procEvent is one event of interest. For a fork, Pid and Tgid are the
// child's and PPid, PTgid the parent's; for an exec or exit, the process's.
// An ack (Kind procEventNone) answers a subscription: Seq and Ack are the
// connector header's, Err the kernel's errno.
type procEvent struct {
	Kind        uint32
	Pid, Tgid   uint32
	PPid, PTgid uint32
	Seq, Ack    uint32
	Err         uint32
	Nanos       uint64 // CLOCK_MONOTONIC when it happened
}

var errProcEventShort = errors.New("process event: truncated message")

// parseProcEvents reads the events of one datagram, skipping messages of
// other connector indexes and event kinds not tracked. A malformed
// message ends the datagram with an error; the events before it stand.
func parseProcEvents(b []byte) ([]procEvent, error) {
	var out []procEvent
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < nlmsgHdrLen {
			return out, errProcEventShort
		}
		n := int(ne.Uint32(b))
		typ := ne.Uint16(b[4:])
		if n < nlmsgHdrLen || n > len(b) {
			return out, errProcEventShort
		}
		msg := b[nlmsgHdrLen:n]
		adv := (n + nlmsgAlignment - 1) &^ (nlmsgAlignment - 1)
		if adv > len(b) {
			adv = len(b)
		}
		b = b[adv:]
		if typ == nlmsgError {
			return out, errors.New("process event: netlink error message")
		}
		if len(msg) < cnMsgLen {
			return out, errProcEventShort
		}
		idx, val := ne.Uint32(msg), ne.Uint32(msg[4:])
		seq, ack := ne.Uint32(msg[8:]), ne.Uint32(msg[12:])
		dlen := int(ne.Uint16(msg[16:]))
		data := msg[cnMsgLen:]
		if dlen > len(data) {
			return out, errProcEventShort
		}
		data = data[:dlen]
		if idx != cnIdxProc || val != cnValProc {
			continue
		}
		if len(data) < procEventHdr {
			return out, errProcEventShort
		}
		what := ne.Uint32(data)
		nanos := ne.Uint64(data[8:])
		ev := data[procEventHdr:]
		u := func(i int) uint32 { return ne.Uint32(ev[4*i:]) }
		switch what {
		case procEventNone:
			if len(ev) < 4 {
				return out, errProcEventShort
			}
			out = append(out, procEvent{Kind: what, Seq: seq, Ack: ack, Err: u(0)})
		case procEventFork:
			if len(ev) < 16 {
				return out, errProcEventShort
			}
			out = append(out, procEvent{Kind: what, PPid: u(0), PTgid: u(1), Pid: u(2), Tgid: u(3), Nanos: nanos})
		case procEventExec, procEventExit:
			if len(ev) < 8 {
				return out, errProcEventShort
			}
			out = append(out, procEvent{Kind: what, Pid: u(0), Tgid: u(1), Nanos: nanos})
		}
	}
	return out, nil
}

// procListenMsg is the subscription request: a netlink message to the
// kernel carrying a connector message for the process events whose data
// is PROC_CN_MCAST_LISTEN. The kernel answers with an event of kind
// procEventNone whose Ack is ack+1 (it numbers the answer's Seq itself).
func procListenMsg(portID, seq, ack uint32) []byte {
	ne := binary.NativeEndian
	b := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	ne.PutUint32(b, uint32(len(b)))
	ne.PutUint16(b[4:], nlmsgDone)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[12:], portID)
	c := b[nlmsgHdrLen:]
	ne.PutUint32(c, cnIdxProc)
	ne.PutUint32(c[4:], cnValProc)
	ne.PutUint32(c[8:], seq)
	ne.PutUint32(c[12:], ack)
	ne.PutUint16(c[16:], 4)
	ne.PutUint32(c[cnMsgLen:], procCnListen)
	return b
}
