package retailsim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// The shop's products and its shoppers' hidden tastes: the structure a recommender
// can learn and the simulation knows. Products belong to categories and, within a
// category, to small sets that go together (a lamp and its shade, a mug and its
// saucer); each shopper has a favourite category and a second one. A visit is a walk:
// after viewing a product a shopper most often views another of its set, or another of
// their favourite category, sometimes anything popular. So the items a user views next
// are predictable from the items they viewed last, which the popular items are not.

// Product is one product of a Catalog.
type Product struct {
	SKU      string
	Category int
	Set      int
	// Popularity is the product's share of views from shoppers without a taste
	// for its category.
	Popularity float64
}

// Catalog is the simulated shop's products.
type Catalog struct {
	Categories []string
	Products   []Product
	byCategory [][]int
	bySet      [][]int
	cumPop     []float64 // cumulative popularity, for draws
}

// Tastes tune how shoppers walk a catalog; see DefaultTastes.
type Tastes struct {
	// After a view: the chance that the next view is another product of its set,
	// else one of the favourite category, else one of the second category, else
	// any product by popularity.
	SameSet, Favourite, Second float64
	// Appeal of a shown product to a shopper: in the set of a product they viewed,
	// of their favourite category, of their second one, anything else.
	AppealSet, AppealFavourite, AppealSecond, AppealOther float64
}

// DefaultTastes are the tastes of the built-in scenarios.
var DefaultTastes = Tastes{SameSet: 0.45, Favourite: 0.35, Second: 0.1,
	AppealSet: 1, AppealFavourite: 0.5, AppealSecond: 0.25, AppealOther: 0.05}

// NewCatalog makes perCategory products in each category, in sets of setSize, with
// popularity following Zipf's law (exponent 1) over a seeded shuffle of the
// products. SKUs are "<category>-<nn>".
func NewCatalog(categories []string, perCategory, setSize int, seed uint64) *Catalog {
	rng := rand.New(rand.NewPCG(seed, 0x7a57e5))
	c := &Catalog{Categories: categories, byCategory: make([][]int, len(categories))}
	for ci, name := range categories {
		for k := range perCategory {
			p := Product{SKU: fmt.Sprintf("%s-%02d", name, k+1), Category: ci, Set: len(c.bySet) + k/setSize}
			c.byCategory[ci] = append(c.byCategory[ci], len(c.Products))
			c.Products = append(c.Products, p)
		}
		for range (perCategory + setSize - 1) / setSize {
			c.bySet = append(c.bySet, nil)
		}
	}
	for i, p := range c.Products {
		c.bySet[p.Set] = append(c.bySet[p.Set], i)
	}
	rank := rng.Perm(len(c.Products))
	total := 0.0
	for i := range c.Products {
		c.Products[i].Popularity = 1 / float64(rank[i]+1)
		total += c.Products[i].Popularity
	}
	sum := 0.0
	for i := range c.Products {
		c.Products[i].Popularity /= total
		sum += c.Products[i].Popularity
		c.cumPop = append(c.cumPop, sum)
	}
	return c
}

// RetailCatalog is the demo shop's catalog: lamps, mugs, chairs and plants, twelve of
// each in sets of three; the first two of each category are the products the demo
// page shows first.
func RetailCatalog() *Catalog {
	c := NewCatalog([]string{"lamp", "mug", "chair", "plant"}, 12, 3, 24)
	named := map[string]string{"lamp-01": "lamp-arc", "lamp-02": "lamp-dot", "mug-01": "mug-ash", "mug-02": "mug-sand",
		"chair-01": "chair-oak", "chair-02": "chair-rush", "plant-01": "plant-fig", "plant-02": "plant-olive"}
	for i, p := range c.Products {
		if n, ok := named[p.SKU]; ok {
			c.Products[i].SKU = n
		}
	}
	return c
}

// Index returns the product with that SKU, or -1.
func (c *Catalog) Index(sku string) int {
	for i, p := range c.Products {
		if p.SKU == sku {
			return i
		}
	}
	return -1
}

// Shopper is one shopper's hidden taste.
type Shopper struct {
	Favourite, Second int // categories
}

// NewShopper draws a shopper's tastes: two different categories.
func (c *Catalog) NewShopper(rng *rand.Rand) Shopper {
	s := Shopper{Favourite: rng.IntN(len(c.Categories))}
	s.Second = (s.Favourite + 1 + rng.IntN(max(len(c.Categories)-1, 1))) % len(c.Categories)
	return s
}

// popular draws a product by popularity.
func (c *Catalog) popular(rng *rand.Rand) int {
	return min(sort.SearchFloat64s(c.cumPop, rng.Float64()), len(c.Products)-1)
}

// inCategory draws a product of a category, by popularity within it.
func (c *Catalog) inCategory(rng *rand.Rand, cat int) int {
	list := c.byCategory[cat]
	total := 0.0
	for _, i := range list {
		total += c.Products[i].Popularity
	}
	u := rng.Float64() * total
	for _, i := range list {
		if u -= c.Products[i].Popularity; u < 0 {
			return i
		}
	}
	return list[len(list)-1]
}

// Next draws the product a shopper views after last (-1 at the start of a visit).
func (c *Catalog) Next(rng *rand.Rand, t Tastes, s Shopper, last int) int {
	u := rng.Float64()
	if last >= 0 {
		if set := c.bySet[c.Products[last].Set]; u < t.SameSet && len(set) > 1 {
			for {
				if i := set[rng.IntN(len(set))]; i != last {
					return i
				}
			}
		}
		u -= t.SameSet
	}
	switch {
	case u < t.Favourite:
		return c.inCategory(rng, s.Favourite)
	case u < t.Favourite+t.Second:
		return c.inCategory(rng, s.Second)
	}
	return c.popular(rng)
}

// Appeal is how much a shopper who viewed the viewed products wants product (0 to
// 1): most for a product of the set of one they viewed, less for one of their
// favourite category, their second one, anything else.
func (c *Catalog) Appeal(t Tastes, s Shopper, viewed []int, product int) float64 {
	p := c.Products[product]
	for _, v := range viewed {
		if v != product && c.Products[v].Set == p.Set {
			return t.AppealSet
		}
	}
	switch p.Category {
	case s.Favourite:
		return t.AppealFavourite
	case s.Second:
		return t.AppealSecond
	}
	return t.AppealOther
}

// ListAppeal is the mean appeal of the products shown (by SKU; unknown SKUs have
// none), over at least slots places: a short list shows less.
func (c *Catalog) ListAppeal(t Tastes, s Shopper, viewed []int, shown []string, slots int) float64 {
	sum := 0.0
	for _, sku := range shown[:min(len(shown), slots)] {
		if i := c.Index(sku); i >= 0 && !slices.Contains(viewed, i) {
			sum += c.Appeal(t, s, viewed, i)
		}
	}
	return sum / float64(slots)
}

// HistoryEvent is one event of a simulated history.
type HistoryEvent struct {
	User string
	Type string // product_view, add_to_cart or purchase
	SKU  string
	At   time.Time
	// Visit numbers the user's visits from 0.
	Visit int
}

// History simulates users' visits spread over days of event time from start, each
// user with a hidden taste: per user a Poisson number of visits (mean 3, at least
// one), each a walk of product views (mean 5), a cart add of the product that
// appealed most and sometimes its purchase. Events come user by user, in time order.
func (c *Catalog) History(t Tastes, users, days int, start time.Time, seed uint64) []HistoryEvent {
	rng := rand.New(rand.NewPCG(seed, 0x415701))
	var out []HistoryEvent
	span := time.Duration(days) * 24 * time.Hour
	for u := range users {
		first := len(out)
		user := fmt.Sprintf("h%06d", u)
		s := c.NewShopper(rng)
		visits := 1 + poisson(2, rng.Float64())
		times := make([]time.Duration, visits)
		for v := range times {
			times[v] = time.Duration(rng.Int64N(int64(span)))
		}
		slices.Sort(times)
		for v, off := range times {
			at := start.Add(off)
			views := 1 + poisson(4, rng.Float64())
			last := -1
			var viewed []int
			for range views {
				last = c.Next(rng, t, s, last)
				viewed = append(viewed, last)
				out = append(out, HistoryEvent{User: user, Type: "product_view", SKU: c.Products[last].SKU, At: at, Visit: v})
				at = at.Add(time.Duration(10+rng.IntN(50)) * time.Second)
			}
			if rng.Float64() < 0.3 {
				best := viewed[0]
				for _, i := range viewed {
					if c.Appeal(t, s, viewed, i) > c.Appeal(t, s, viewed, best) {
						best = i
					}
				}
				out = append(out, HistoryEvent{User: user, Type: "add_to_cart", SKU: c.Products[best].SKU, At: at, Visit: v})
				if rng.Float64() < 0.5 {
					out = append(out, HistoryEvent{User: user, Type: "purchase", SKU: c.Products[best].SKU, At: at.Add(time.Minute), Visit: v})
				}
			}
		}
		// Visits a few minutes apart may interleave.
		slices.SortStableFunc(out[first:], func(a, b HistoryEvent) int { return cmp.Compare(a.At.UnixNano(), b.At.UnixNano()) })
	}
	return out
}
