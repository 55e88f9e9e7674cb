package blob_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/lifeboat-dev/lifeboat/e2e/fleet/blobproxy"
	"github.com/lifeboat-dev/lifeboat/spoke/blob"
)

// BenchmarkUpload uploads the same bytes through the proxy to Azurite with
// Upload and with a plain azblob UploadStream of the same block size and
// concurrency, alternating which goes first, and reports both throughputs and
// their ratio (ours/baseline time: 1 is as fast, above 1 slower).
func BenchmarkUpload(b *testing.B) {
	const (
		size        = 32 << 20
		blockSize   = blob.DefaultBlockSize
		concurrency = blob.DefaultConcurrency
	)
	ctx := context.Background()
	container := newContainer(b, "bench")
	id := newIdentity(b, true)
	id.grant(b, container, blobproxy.StorageBlobDataContributor)
	cfg := id.config(container, "bench")

	ours, err := blob.New(cfg, testOptions(blob.WithBlockSize(blockSize), blob.WithConcurrency(concurrency))...)
	if err != nil {
		b.Fatal(err)
	}
	// The same HTTP settings as the package's own transport (HTTP/2 when offered), so
	// that only the upload code differs.
	transport := &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: tlsConfig(azure.roots), MaxIdleConnsPerHost: 16, ForceAttemptHTTP2: true}}
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: azure.entra.ClientOptions().Cloud, Transport: transport},
		ClientID:                 id.app.ClientID,
		TenantID:                 tenantID,
		TokenFilePath:            id.tokenFile,
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	baseline, err := azblob.NewClient(cfg.Endpoint, cred, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: transport}})
	if err != nil {
		b.Fatal(err)
	}
	uploadOurs := func(i int) error {
		_, err := ours.Upload(ctx, fmt.Sprintf("ours-%d", i), generator(byte(i), size))
		return err
	}
	uploadBaseline := func(i int) error {
		_, err := baseline.UploadStream(ctx, container, fmt.Sprintf("bench/baseline-%d", i), generator(byte(i), size),
			&blockblob.UploadStreamOptions{BlockSize: blockSize, Concurrency: concurrency})
		return err
	}
	// Warm up both: tokens, connections.
	if err := uploadOurs(-1); err != nil {
		b.Fatal(err)
	}
	if err := uploadBaseline(-1); err != nil {
		b.Fatal(err)
	}

	var oursTime, baselineTime time.Duration
	timed := func(f func(int) error, i int, total *time.Duration) {
		start := time.Now()
		if err := f(i); err != nil {
			b.Fatal(err)
		}
		*total += time.Since(start)
	}
	b.SetBytes(2 * size)
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			timed(uploadOurs, i, &oursTime)
			timed(uploadBaseline, i, &baselineTime)
		} else {
			timed(uploadBaseline, i, &baselineTime)
			timed(uploadOurs, i, &oursTime)
		}
		i++
	}
	mb := float64(size) / (1 << 20) * float64(i)
	b.ReportMetric(mb/oursTime.Seconds(), "ours-MiB/s")
	b.ReportMetric(mb/baselineTime.Seconds(), "baseline-MiB/s")
	b.ReportMetric(oursTime.Seconds()/baselineTime.Seconds(), "ours/baseline")
}
