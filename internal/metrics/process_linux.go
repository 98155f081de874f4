package metrics

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

func processDescs() []*Desc {
	return []*Desc{
		NewDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", CounterValue, nil),
		NewDesc("process_resident_memory_bytes", "Resident memory size in bytes.", GaugeValue, nil),
		NewDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.", GaugeValue, nil),
		NewDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", GaugeValue, nil),
		NewDesc("process_open_fds", "Number of open file descriptors.", GaugeValue, nil),
		NewDesc("process_max_fds", "Maximum number of open file descriptors.", GaugeValue, nil),
	}
}

// collectProcess reads /proc/self; a figure it cannot read is left out.
func collectProcess(d []*Desc, emit Emit) {
	if st, err := os.ReadFile("/proc/self/stat"); err == nil {
		// The command name (field 2) may hold spaces: fields count from
		// the last ')'.
		if i := bytes.LastIndexByte(st, ')'); i >= 0 {
			f := strings.Fields(string(st[i+1:]))
			// f[0] is field 3 (state); utime is field 14, stime 15,
			// starttime 22, vsize 23, rss 24.
			if len(f) > 21 {
				num := func(i int) float64 { v, _ := strconv.ParseFloat(f[i], 64); return v }
				emit(d[0], (num(11)+num(12))/clockTicks)
				emit(d[1], num(21)*float64(os.Getpagesize()))
				emit(d[2], num(20))
				if bt, ok := bootTime(); ok {
					emit(d[3], bt+num(19)/clockTicks)
				}
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		emit(d[4], float64(len(fds)))
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		emit(d[5], float64(lim.Cur))
	}
}

// bootTime reads the boot time (btime) from /proc/stat.
func bootTime() (float64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			t, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return t, err == nil
		}
	}
	return 0, false
}
