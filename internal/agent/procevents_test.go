package agent

import (
	"encoding/binary"
	"testing"
)

// procMsg builds one netlink message of the proc connector as the kernel
// sends it: header, connector header, event (what, cpu, time, data).
func procMsg(idx uint32, what uint32, ack uint32, data ...uint32) []byte {
	ne := binary.NativeEndian
	ev := make([]byte, procEventHdr+4*len(data))
	ne.PutUint32(ev, what)
	ne.PutUint64(ev[8:], 12345)
	for i, d := range data {
		ne.PutUint32(ev[procEventHdr+4*i:], d)
	}
	b := make([]byte, nlmsgHdrLen+cnMsgLen+len(ev))
	ne.PutUint32(b, uint32(len(b)))
	ne.PutUint16(b[4:], nlmsgDone)
	c := b[nlmsgHdrLen:]
	ne.PutUint32(c, idx)
	ne.PutUint32(c[4:], cnValProc)
	ne.PutUint32(c[12:], ack)
	ne.PutUint16(c[16:], uint16(len(ev)))
	copy(c[cnMsgLen:], ev)
	return b
}

// TestParseProcEvents: forks, execs, exits and the subscription's answer
// are read with their pids; threads' events keep pid and tgid apart;
// other connectors' messages and untracked kinds are skipped; a message
// whose lengths do not hold ends the datagram with an error, keeping the
// events before it.
func TestParseProcEvents(t *testing.T) {
	var dgram []byte
	dgram = append(dgram, procMsg(cnIdxProc, procEventNone, 8, 0)...)
	dgram = append(dgram, procMsg(cnIdxProc, procEventFork, 0, 10, 10, 11, 11)...)
	dgram = append(dgram, procMsg(cnIdxProc, procEventFork, 0, 11, 11, 12, 11)...) // a thread
	dgram = append(dgram, procMsg(cnIdxProc, procEventExec, 0, 11, 11)...)
	dgram = append(dgram, procMsg(2, procEventExec, 0, 99, 99)...)             // another connector
	dgram = append(dgram, procMsg(cnIdxProc, 0x200, 0, 11, 11, 0, 0, 0, 0)...) // comm: not tracked
	dgram = append(dgram, procMsg(cnIdxProc, procEventExit, 0, 11, 11, 0, 9, 10, 10)...)
	evs, err := parseProcEvents(dgram)
	if err != nil {
		t.Fatal(err)
	}
	want := []procEvent{
		{Kind: procEventNone, Ack: 8},
		{Kind: procEventFork, PPid: 10, PTgid: 10, Pid: 11, Tgid: 11, Nanos: 12345},
		{Kind: procEventFork, PPid: 11, PTgid: 11, Pid: 12, Tgid: 11, Nanos: 12345},
		{Kind: procEventExec, Pid: 11, Tgid: 11, Nanos: 12345},
		{Kind: procEventExit, Pid: 11, Tgid: 11, Nanos: 12345},
	}
	if len(evs) != len(want) {
		t.Fatalf("got %+v", evs)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, evs[i], want[i])
		}
	}

	good := procMsg(cnIdxProc, procEventExec, 0, 5, 5)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"a short header", append(append([]byte{}, good...), 1, 2, 3)},
		{"a length past the end", func() []byte {
			b := append([]byte{}, good...)
			b = append(b, procMsg(cnIdxProc, procEventExec, 0, 6, 6)...)
			binary.NativeEndian.PutUint32(b[len(good):], 4096)
			return b
		}()},
		{"a length under the header", func() []byte {
			b := append(append([]byte{}, good...), make([]byte, 16)...)
			binary.NativeEndian.PutUint32(b[len(good):], 3)
			return b
		}()},
		{"a connector length past the message", func() []byte {
			b := append(append([]byte{}, good...), procMsg(cnIdxProc, procEventExec, 0, 6, 6)...)
			binary.NativeEndian.PutUint16(b[len(good)+nlmsgHdrLen+16:], 500)
			return b
		}()},
		{"a fork event cut short", append(append([]byte{}, good...), procMsg(cnIdxProc, procEventFork, 0, 1, 1)...)},
	} {
		evs, err := parseProcEvents(tc.b)
		if err == nil || len(evs) != 1 || evs[0].Tgid != 5 {
			t.Errorf("%s: %+v, %v: want the first event and an error", tc.name, evs, err)
		}
	}
}

// FuzzParseProcEvents: whatever a datagram holds, parsing it never panics,
// and every event it returns is of a kind tracked, at most one a message.
func FuzzParseProcEvents(f *testing.F) {
	f.Add(procMsg(cnIdxProc, procEventFork, 0, 1, 1, 2, 2))
	f.Add(append(procMsg(cnIdxProc, procEventNone, 3, 0), procMsg(cnIdxProc, procEventExit, 0, 2, 2, 0, 0, 1, 1)...))
	f.Add(procMsg(cnIdxProc, procEventExec, 0, 7))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, _ := parseProcEvents(b)
		if len(evs) > len(b)/(nlmsgHdrLen+cnMsgLen+procEventHdr)+1 {
			t.Fatalf("%d events from %d bytes", len(evs), len(b))
		}
		for _, ev := range evs {
			switch ev.Kind {
			case procEventNone, procEventFork, procEventExec, procEventExit:
			default:
				t.Fatalf("event of kind %#x", ev.Kind)
			}
		}
	})
}

// TestProcListenMsg: the subscription parses back as a connector message
// of the process events holding PROC_CN_MCAST_LISTEN.
func TestProcListenMsg(t *testing.T) {
	b := procListenMsg(77, 1, 5)
	ne := binary.NativeEndian
	if int(ne.Uint32(b)) != len(b) || ne.Uint32(b[12:]) != 77 {
		t.Fatalf("header: %x", b[:nlmsgHdrLen])
	}
	c := b[nlmsgHdrLen:]
	if ne.Uint32(c) != cnIdxProc || ne.Uint32(c[4:]) != cnValProc || ne.Uint32(c[12:]) != 5 || ne.Uint16(c[16:]) != 4 || ne.Uint32(c[cnMsgLen:]) != procCnListen {
		t.Fatalf("connector message: %x", c)
	}
}
