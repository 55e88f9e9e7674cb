// Command etcd is etcd built from its pinned Go module for the local test fleet.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
