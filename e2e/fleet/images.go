package fleet

import (
	"context"
	"fmt"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/assets"
	"github.com/lifeboat-dev/lifeboat/images"
)

// NodeImages are the images the fleet's nodes import: Lifeboat's own, built
// from the tree, and the fleet's test images.
type NodeImages struct {
	// Pause is every pod's sandbox image.
	Pause PodImage
	// Probe is lifeboat-podprobe, which checks what a pod can reach.
	Probe PodImage
	// WorkloadIdentityWebhook is the Azure Workload Identity webhook.
	WorkloadIdentityWebhook PodImage
	// Spoke is lifeboat-spoke, built from the tree.
	Spoke PodImage
	// Busybox is Debian's busybox-static as /busybox, for test workloads:
	// run ["/busybox", "sh", "-c", "..."].
	Busybox PodImage
}

// probeImage is the fleet's test image of lifeboat-podprobe.
var probeImage = images.Image{Name: "lifeboat-podprobe", Package: "./e2e/fleet/cmd/lifeboat-podprobe"}

// busyboxImage is the fleet's workload image: the host's static busybox.
var busyboxImage = images.Image{Name: "busybox", Binary: "/bin/busybox"}

// TestImages builds the node images into out.
func TestImages(ctx context.Context, out string) (NodeImages, error) {
	webhook, err := assets.Path("webhook")
	if err != nil {
		return NodeImages{}, err
	}
	wiImage := images.Image{Name: "azure-wi-webhook", Binary: webhook}
	built, err := images.Build(ctx, images.Options{
		Root:   RepoRoot(),
		Out:    out,
		Images: []images.Image{images.Pause, images.Spoke, probeImage, wiImage, busyboxImage},
	})
	if err != nil {
		return NodeImages{}, err
	}
	byName := map[string]PodImage{}
	for _, b := range built {
		byName[b.Name] = PodImage{Ref: b.Ref, Tarball: b.Path}
	}
	imgs := NodeImages{Pause: byName[images.Pause.Name], Probe: byName[probeImage.Name], WorkloadIdentityWebhook: byName[wiImage.Name], Spoke: byName[images.Spoke.Name], Busybox: byName[busyboxImage.Name]}
	if imgs.Pause.Tarball == "" || imgs.Probe.Tarball == "" || imgs.WorkloadIdentityWebhook.Tarball == "" || imgs.Spoke.Tarball == "" || imgs.Busybox.Tarball == "" {
		return NodeImages{}, fmt.Errorf("images built: %v", built)
	}
	return imgs, nil
}
