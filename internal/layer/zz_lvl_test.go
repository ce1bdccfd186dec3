package layer
import ("runtime";"testing";"io";"os";"syscall";"time";"github.com/klauspost/compress/gzip")
type cnt2 struct{n int64}
func (c *cnt2) Write(p []byte)(int,error){c.n+=int64(len(p));return len(p),nil}
func cpu() time.Duration { var ru syscall.Rusage; syscall.Getrusage(syscall.RUSAGE_THREAD,&ru); return time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) }
func TestLevels(t *testing.T){
 runtime.LockOSThread(); data,_:=os.ReadFile("/usr/lib/x86_64-linux-gnu/libcrypto.so.3")
 tot:=map[int]time.Duration{}; size:=map[int]int64{}
 for r:=0;r<10;r++{ for _,l:=range []int{1,-1}{ c:=&cnt2{}; s:=cpu(); z,_:=gzip.NewWriterLevel(c,l); z.Write(data); z.Close(); tot[l]+=cpu()-s; size[l]=c.n; _=io.Discard } }
 for _,l:=range []int{1,-1}{ t.Logf("level %d: %d bytes (%.1f%%), cpu %v/op, %.1f MB/s", l, size[l], float64(size[l])*100/float64(len(data)), tot[l]/10, float64(len(data))*10/tot[l].Seconds()/1e6) }
}
