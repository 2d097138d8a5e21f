package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/liftlab/lift/web/client"
	"github.com/liftlab/lift/web/client/amqpclient"
)

// Decide with the local cache, and send a purchase.
func Example() {
	ctx := context.Background()
	c, err := client.New(client.Config{BaseURL: "http://127.0.0.1:8080", Key: os.Getenv("LIFT_CLIENT_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	d, err := c.Decide(ctx, "u1", map[string]any{"country": "US", "device": "mobile"}, "hero-banner", "free-shipping")
	if err != nil && !errors.Is(err, client.ErrStale) {
		log.Fatal(err) // ErrStale: lift is unreachable and d holds the last decisions
	}
	var freeShipping bool
	d.Value("free-shipping", &freeShipping)
	fmt.Println("hero:", d.Variant("hero-banner"), "free shipping:", freeShipping)

	if err := c.Track(ctx, client.Event{Type: "purchase", UserID: "u1", Value: 59.90,
		Properties: map[string]any{"sku": "B-12"}}); err != nil {
		log.Fatal(err)
	}
}

// A Batcher sends events in the background, in batches, retrying until they are in.
func ExampleBatcher() {
	c, err := client.New(client.Config{BaseURL: "http://127.0.0.1:8080", Key: os.Getenv("LIFT_CLIENT_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	b := client.NewBatcher(c, client.BatcherOptions{Size: 500, Interval: time.Second,
		OnError: func(err error, events []client.Event) { log.Printf("%d events lost: %v", len(events), err) }})
	for i := range 1000 {
		_ = b.Add(client.Event{Type: "page_view", UserID: fmt.Sprint("user-", i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		log.Print(err)
	}
}

// Events can go straight to RabbitMQ instead of through lift's collector.
func ExampleBatcher_rabbitMQ() {
	ctx := context.Background()
	pub, err := amqpclient.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	b := client.NewBatcher(pub, client.BatcherOptions{})
	_ = b.Add(client.Event{Type: "add_to_cart", UserID: "u1", Properties: map[string]any{"sku": "B-12"}})
	if err := b.Close(ctx); err != nil {
		log.Print(err)
	}
}
