package closure

import "os"

// readObjectFile reads the ELF file at a host path.
func readObjectFile(host string) (*object, error) {
	f, err := os.Open(host)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readObject(f)
}
