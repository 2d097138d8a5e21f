package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Where the CPU goes while lift is loaded: every process of the pipeline shares this
// machine's cores, so the report shows what each costs per accepted event and how
// much of the machine the whole pipeline used.

// clockTicks is the unit of /proc's CPU times (USER_HZ, 100 on Linux).
const clockTicks = 100

type process struct {
	name string
	pid  int
}

type processList []process

func (l *processList) String() string { return fmt.Sprint(*l) }

func (l *processList) Set(v string) error {
	name, pid, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(pid)
	if !ok || err != nil || name == "" {
		return fmt.Errorf("want name=pid, got %q", v)
	}
	*l = append(*l, process{name, n})
	return nil
}

// cpuSample is the CPU seconds each process used so far, and the machine's busy
// seconds over all cores.
type cpuSample struct {
	procs []float64 // -1: unreadable (the process is gone)
	busy  float64
}

func sampleCPU(procs []process) cpuSample {
	s := cpuSample{procs: make([]float64, len(procs)), busy: machineBusy()}
	for i, p := range procs {
		s.procs[i] = processCPU(p.pid)
	}
	return s
}

// processCPU is utime + stime of pid in seconds, -1 if unreadable.
func processCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces; the fields after it may not.
	_, rest, ok := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (utime + stime) / clockTicks
}

// machineBusy is the time all cores spent running anything, in seconds, -1 if
// unreadable.
func machineBusy() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return -1
	}
	// user nice system idle iowait irq softirq steal guest…: busy is user, nice,
	// system, irq and softirq (steal is another machine's time, guest is in user).
	busy := 0.0
	for _, i := range []int{1, 2, 3, 6, 7} {
		t, _ := strconv.ParseFloat(f[i], 64)
		busy += t
	}
	return busy / clockTicks
}

// cpuReport is a Markdown table: per process, the cores it used while loading and
// its CPU time per accepted event; then the machine as a whole.
func cpuReport(procs []process, before, after cpuSample, elapsed time.Duration, events float64) string {
	var b strings.Builder
	b.WriteString("| process | cores used | µs of CPU per accepted event |\n|---|---|---|\n")
	row := func(name string, used float64) {
		fmt.Fprintf(&b, "| %s | %.2f | %.1f |\n", name, used/elapsed.Seconds(), used/events*1e6)
	}
	named := 0.0
	for i, p := range procs {
		if before.procs[i] < 0 || after.procs[i] < 0 {
			fmt.Fprintf(&b, "| %s | n/a | n/a |\n", p.name)
			continue
		}
		used := after.procs[i] - before.procs[i]
		named += used
		row(p.name, used)
	}
	if before.busy >= 0 && after.busy >= 0 {
		busy := after.busy - before.busy
		row("everything else", max(0, busy-named))
		row("the whole machine (busy)", busy)
	}
	return b.String()
}
