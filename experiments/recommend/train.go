package recommend

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Params tune training; zero values take the defaults.
type Params struct {
	// Neighbours is how many similar items the model keeps per item (default 50).
	Neighbours int
	// Shrink damps the similarity of pairs few users share: × s/(s + Shrink) for s
	// users (default 3).
	Shrink float64
	// MaxItemsPerUser bounds the items one user contributes, the heaviest kept
	// (default 200): pair counting costs the square of it.
	MaxItemsPerUser int
	// PopularItems is how many popular items the model keeps (default 100).
	PopularItems int
	// Workers is how many goroutines compute similarities (default GOMAXPROCS).
	Workers int
}

func (p Params) withDefaults() Params {
	if p.Neighbours <= 0 {
		p.Neighbours = 50
	}
	if p.Shrink <= 0 {
		p.Shrink = 3
	}
	if p.MaxItemsPerUser <= 0 {
		p.MaxItemsPerUser = 200
	}
	if p.PopularItems <= 0 {
		p.PopularItems = 100
	}
	if p.Workers <= 0 {
		p.Workers = runtime.GOMAXPROCS(0)
	}
	return p
}

// Builder collects users' weights per item for training, one user at a time: the
// calls for one user must be consecutive (the stores read interactions ordered by
// user). It keeps them in flat arrays, 8 bytes per (user, item), so a million users
// with twenty items each fit in a few hundred MB.
type Builder struct {
	items []string
	index map[string]int32
	// Users' rows, consecutive: rowStart[u] is where user u's items start.
	rowStart []int64
	rowItem  []int32
	rowW     []float32
	current  string
	inRow    map[int32]int // item → position in the current row
	users    int
}

// NewBuilder returns an empty builder.
func NewBuilder() *Builder {
	return &Builder{index: map[string]int32{}, inRow: map[int32]int{}}
}

// Add adds weight to the user's weight for the item; weights of one item add up.
// Weights ≤ 0 and empty ids are ignored.
func (b *Builder) Add(user, item string, weight float64) {
	if !(weight > 0) || user == "" || item == "" {
		return
	}
	if user != b.current || b.users == 0 {
		b.rowStart = append(b.rowStart, int64(len(b.rowItem)))
		b.current = user
		b.users++
		clear(b.inRow)
	}
	i := b.item(item)
	if at, ok := b.inRow[i]; ok {
		b.rowW[at] += float32(weight)
		return
	}
	b.inRow[i] = len(b.rowItem)
	b.rowItem = append(b.rowItem, i)
	b.rowW = append(b.rowW, float32(weight))
}

func (b *Builder) item(id string) int32 {
	if i, ok := b.index[id]; ok {
		return i
	}
	i := int32(len(b.items))
	b.items = append(b.items, id)
	b.index[id] = i
	return i
}

// Users is how many users were added.
func (b *Builder) Users() int { return b.users }

// ItemWeight is an item's total weight, for popularity.
type ItemWeight struct {
	Item   string
	Weight float64
}

// Train computes the model from the builder's interactions and the popularity of
// items over the last day. Items of popular that nobody else touched are added to
// the builder, which may be trained again.
func Train(b *Builder, popular []ItemWeight, p Params) *Model {
	start := time.Now()
	p = p.withDefaults()
	for _, pw := range popular {
		b.item(pw.Item) // popular items are served even if nobody else touched them
	}
	nItems := len(b.items)
	rows := append(slices.Clip(b.rowStart), int64(len(b.rowItem)))
	rowItem, rowW := slices.Clone(b.rowItem), slices.Clone(b.rowW)

	// Damp the weights, keep each user's heaviest items, weigh users.
	userF := make([]float32, b.users)
	for u := range b.users {
		lo, hi := rows[u], rows[u+1]
		its, ws := rowItem[lo:hi], rowW[lo:hi]
		for k := range ws {
			ws[k] = float32(math.Log1p(float64(ws[k])))
		}
		if n := int(hi - lo); n > p.MaxItemsPerUser {
			order := make([]int, n)
			for k := range order {
				order[k] = k
			}
			slices.SortFunc(order, func(a, c int) int { return cmp.Compare(ws[c], ws[a]) })
			keptI, keptW := make([]int32, p.MaxItemsPerUser), make([]float32, p.MaxItemsPerUser)
			for k := range p.MaxItemsPerUser {
				keptI[k], keptW[k] = its[order[k]], ws[order[k]]
			}
			copy(its, keptI)
			copy(ws, keptW)
			for k := p.MaxItemsPerUser; k < n; k++ {
				ws[k] = 0 // dropped: weight 0 contributes nothing
			}
		}
		userF[u] = float32(1 / math.Log2(2+float64(min(int(hi-lo), p.MaxItemsPerUser))))
	}

	// Columns: each item's users and weights; and each item's norm.
	colStart := make([]int64, nItems+1)
	for k, w := range rowW {
		if w > 0 {
			colStart[rowItem[k]+1]++
		}
	}
	for i := range nItems {
		colStart[i+1] += colStart[i]
	}
	colUser := make([]int32, colStart[nItems])
	colW := make([]float32, colStart[nItems])
	fill := slices.Clone(colStart[:nItems])
	norm := make([]float64, nItems)
	for u := range b.users {
		for k := rows[u]; k < rows[u+1]; k++ {
			w := rowW[k]
			if w == 0 {
				continue
			}
			i := rowItem[k]
			colUser[fill[i]], colW[fill[i]] = int32(u), w
			fill[i]++
			norm[i] += float64(userF[u]) * float64(w) * float64(w)
		}
	}
	for i := range norm {
		norm[i] = math.Sqrt(norm[i])
	}

	m := &Model{TrainedAt: time.Now().UTC(), Items: slices.Clone(b.items), Neighbours: make([][]Neighbour, nItems)}
	var next atomic.Int64
	var pairs atomic.Int64
	var wg sync.WaitGroup
	for range p.Workers {
		wg.Go(func() {
			acc := make([]float32, nItems)
			support := make([]int32, nItems)
			var touched []int32
			var counted int64
			for {
				i := int32(next.Add(1) - 1)
				if int(i) >= nItems {
					break
				}
				for c := colStart[i]; c < colStart[i+1]; c++ {
					u, wi := colUser[c], colW[c]*userF[colUser[c]]
					for k := rows[u]; k < rows[u+1]; k++ {
						j, wj := rowItem[k], rowW[k]
						if j == i || wj == 0 {
							continue
						}
						if support[j] == 0 {
							touched = append(touched, j)
						}
						acc[j] += wi * wj
						support[j]++
					}
					counted += rows[u+1] - rows[u]
				}
				m.Neighbours[i] = topK(touched, acc, support, norm, i, p)
				for _, j := range touched {
					acc[j], support[j] = 0, 0
				}
				touched = touched[:0]
			}
			pairs.Add(counted)
		})
	}
	wg.Wait()

	m.Popular = popularList(b, popular, p.PopularItems)
	m.Stats = Stats{Users: b.users, Items: nItems, Interactions: len(rowItem), Pairs: pairs.Load(), Duration: time.Since(start)}
	m.buildIndex()
	return m
}

// topK returns item i's Neighbours most similar items among those it co-occurs with.
func topK(touched []int32, acc []float32, support []int32, norm []float64, i int32, p Params) []Neighbour {
	var heap []Neighbour // min-heap on score of the best so far
	for _, j := range touched {
		if norm[i] == 0 || norm[j] == 0 {
			continue
		}
		s := float64(support[j])
		sim := float32(float64(acc[j]) / (norm[i] * norm[j]) * s / (s + p.Shrink))
		nb := Neighbour{Item: j, Score: sim}
		switch {
		case len(heap) < p.Neighbours:
			heap = append(heap, nb)
			up(heap, len(heap)-1)
		case worse(heap[0], nb):
			heap[0] = nb
			down(heap, 0)
		}
	}
	slices.SortFunc(heap, func(a, b Neighbour) int { return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.Item, b.Item)) })
	return slices.Clip(heap)
}

// worse orders neighbours for the heap: lower score first, then higher index (so
// ties keep the lower index, as the final sort does).
func worse(a, b Neighbour) bool {
	return a.Score < b.Score || a.Score == b.Score && a.Item > b.Item
}

func up(h []Neighbour, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !worse(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func down(h []Neighbour, i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && worse(h[c+1], h[c]) {
			c++
		}
		if !worse(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// popularList ranks the popular items by weight, with their share of the total.
func popularList(b *Builder, popular []ItemWeight, n int) []Neighbour {
	total := 0.0
	for _, pw := range popular {
		total += max(pw.Weight, 0)
	}
	var out []Neighbour
	for _, pw := range popular {
		if pw.Weight > 0 {
			out = append(out, Neighbour{Item: b.index[pw.Item], Score: float32(pw.Weight / total)})
		}
	}
	slices.SortFunc(out, func(a, c Neighbour) int { return cmp.Or(cmp.Compare(c.Score, a.Score), cmp.Compare(a.Item, c.Item)) })
	return slices.Clip(out[:min(n, len(out))])
}
