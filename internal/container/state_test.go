package container

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// sleeper starts a process that lives until the test kills it, and returns its pid and start time.
func sleeper(t *testing.T) (*exec.Cmd, uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep to run: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	start, err := StartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, start
}

func running(t *testing.T, c *Container, pid int, start uint64) {
	t.Helper()
	err := c.Update(func(st *State) error {
		st.Status, st.Pid, st.PidStart, st.Started = StatusRunning, pid, start, time.Now()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAliveAndStartTime(t *testing.T) {
	cmd, start := sleeper(t)
	pid := cmd.Process.Pid
	if !Alive(pid, start) {
		t.Fatal("a running sleep is not alive")
	}
	if Alive(pid, start+1) {
		t.Fatal("alive with the wrong start time")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if Alive(pid, start) || Alive(0, 0) || Alive(-1, 0) {
		t.Fatal("dead processes are alive")
	}
}

func TestParseStartTime(t *testing.T) {
	// The command may contain spaces and parentheses.
	line := "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615\n"
	if got, err := parseStartTime([]byte(line)); err != nil || got != 987654 {
		t.Fatalf("parseStartTime = %d, %v", got, err)
	}
	if _, err := parseStartTime([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("short line parsed")
	}
}

func TestStateOfRunningContainer(t *testing.T) {
	cs := open(t)
	c := create(t, cs, &State{})
	cmd, start := sleeper(t)
	running(t, c, cmd.Process.Pid, start)
	st, err := c.State()
	if err != nil || st.Status != StatusRunning {
		t.Fatalf("State = %+v, %v", st, err)
	}
}

// The container's process died and its monitor is gone (kill -9 of both, say): exited 255.
func TestRefreshDeadProcess(t *testing.T) {
	cs := open(t)
	c := create(t, cs, &State{})
	cmd, start := sleeper(t)
	monitor, monStart := sleeper(t)
	running(t, c, cmd.Process.Pid, start)
	c.Update(func(st *State) error { st.MonitorPid, st.MonitorStart = monitor.Process.Pid, monStart; return nil })
	monitor.Process.Kill()
	monitor.Wait()
	cmd.Process.Kill()
	cmd.Wait()

	checkLost(t, c)
	raw, err := c.read() // the refresh was recorded, not only reported
	if err != nil || raw.Status != StatusExited || raw.ExitCode != 255 || raw.Error == "" || raw.Finished.IsZero() {
		t.Fatalf("state.json after refresh: %+v, %v", raw, err)
	}
	states, err := cs.List()
	if err != nil || len(states) != 1 || states[0].Status != StatusExited {
		t.Fatalf("List = %v, %v", states, err)
	}
}

// The recorded pid now belongs to another process: its start time gives it away.
func TestRefreshReusedPid(t *testing.T) {
	cs := open(t)
	c := create(t, cs, &State{})
	cmd, start := sleeper(t)
	running(t, c, cmd.Process.Pid, start+1) // as if ours had died and the pid been reused
	checkLost(t, c)
	if !Alive(cmd.Process.Pid, start) {
		t.Fatal("the other process was touched")
	}
}

func checkLost(t *testing.T, c *Container) {
	t.Helper()
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != StatusExited || st.ExitCode != 255 || st.Error != "monitor died (kill -9?)" {
		t.Fatalf("State = status %s, code %d, error %q", st.Status, st.ExitCode, st.Error)
	}
}

// The process is gone but its monitor lives and is about to record the exit: State waits for it.
func TestRefreshWaitsForLiveMonitor(t *testing.T) {
	cs := open(t)
	c := create(t, cs, &State{})
	me, err := StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	cmd, start := sleeper(t)
	running(t, c, cmd.Process.Pid, start)
	c.Update(func(st *State) error { st.MonitorPid, st.MonitorStart = os.Getpid(), me; return nil })
	cmd.Process.Kill()
	cmd.Wait()
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.Update(func(st *State) error { st.Status, st.ExitCode = StatusExited, 137; return nil })
	}()
	st, err := c.State()
	if err != nil || st.Status != StatusExited || st.ExitCode != 137 || st.Error != "" {
		t.Fatalf("State = %+v, %v", st, err)
	}
}

func TestUpdateUnderConcurrency(t *testing.T) {
	cs := open(t)
	c := create(t, cs, &State{Name: "counter"})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			h, err := cs.Get("counter") // its own handle, its own lock file description
			if err == nil {
				err = h.Update(func(st *State) error { st.StopTimeout++; return nil })
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st, err := c.State()
	if err != nil || st.StopTimeout != 20 {
		t.Fatalf("counter = %d, %v; want 20", st.StopTimeout, err)
	}
}

func TestUpdateKeepsIdentity(t *testing.T) {
	cs := open(t)
	c := create(t, cs, &State{Name: "same"})
	if err := c.Update(func(st *State) error { st.Name = "other"; return nil }); err == nil {
		t.Fatal("renamed through Update")
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	if err := c.Update(func(*State) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update of a removed container: %v", err)
	}
}

// A container still being made whose maker (a foreground kiln, its monitor) is gone will never
// start: State reports it exited, so what it reserved is freed. One whose maker lives stays
// created.
func TestCreatedByDeadKiln(t *testing.T) {
	cs := open(t)
	me, _ := StartTime(os.Getpid())
	alive := create(t, cs, &State{MonitorPid: os.Getpid(), MonitorStart: me})
	gone := create(t, cs, &State{MonitorPid: os.Getpid(), MonitorStart: me + 1}) // a reused pid
	if st, err := alive.State(); err != nil || st.Status != StatusCreated {
		t.Errorf("made by a live kiln: %+v, %v; want created", st, err)
	}
	st, err := gone.State()
	if err != nil || st.Status != StatusExited || st.ExitCode != 255 || st.Error != "kiln died before the container started" {
		t.Fatalf("made by a dead kiln: %+v, %v", st, err)
	}
	if again, _ := gone.State(); again.Status != StatusExited {
		t.Error("the exit was not recorded")
	}
}
