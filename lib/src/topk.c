/*
 * topk.c - bounded top-k heaps with the (distance, id) tie-break that
 * every CPU kernel shares (DESIGN.md: ties break by (distance, id)).
 */
#include "internal.h"

static void sift_down(float *key, int64_t *id, int64_t *aux, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && ann_pair_worse(key[l], id[l], key[w], id[w]))
            w = l;
        if (r < n && ann_pair_worse(key[r], id[r], key[w], id[w]))
            w = r;
        if (w == i)
            return;
        float tk = key[i];
        key[i] = key[w];
        key[w] = tk;
        int64_t ti = id[i];
        id[i] = id[w];
        id[w] = ti;
        if (aux) {
            int64_t ta = aux[i];
            aux[i] = aux[w];
            aux[w] = ta;
        }
        i = w;
    }
}

void ann_topk_push(ann_topk *t, float key, int64_t id)
{
    ann_topk_push_aux(t, key, id, 0);
}

void ann_topk_push_aux(ann_topk *t, float key, int64_t id, int64_t aux)
{
    if (t->n < t->cap) {
        int i = t->n++;
        /* sift up */
        while (i > 0) {
            int p = (i - 1) / 2;
            if (!ann_pair_worse(key, id, t->key[p], t->id[p]))
                break;
            t->key[i] = t->key[p];
            t->id[i] = t->id[p];
            if (t->aux)
                t->aux[i] = t->aux[p];
            i = p;
        }
        t->key[i] = key;
        t->id[i] = id;
        if (t->aux)
            t->aux[i] = aux;
        return;
    }
    if (t->cap == 0 || !ann_pair_worse(t->key[0], t->id[0], key, id))
        return;
    t->key[0] = key;
    t->id[0] = id;
    if (t->aux)
        t->aux[0] = aux;
    sift_down(t->key, t->id, t->aux, t->n, 0);
}

void ann_topk_sort(ann_topk *t)
{
    /* heap sort: repeatedly move the worst to the end */
    for (int n = t->n; n > 1; n--) {
        float tk = t->key[0];
        t->key[0] = t->key[n - 1];
        t->key[n - 1] = tk;
        int64_t ti = t->id[0];
        t->id[0] = t->id[n - 1];
        t->id[n - 1] = ti;
        if (t->aux) {
            int64_t ta = t->aux[0];
            t->aux[0] = t->aux[n - 1];
            t->aux[n - 1] = ta;
        }
        sift_down(t->key, t->id, t->aux, n - 1, 0);
    }
}

void ann_pairs_sort(float *key, int64_t *id, int64_t n)
{
    /* insertion sort for short lists, heap sort otherwise */
    if (n <= 32) {
        for (int64_t i = 1; i < n; i++) {
            float k = key[i];
            int64_t v = id[i];
            int64_t j = i - 1;
            while (j >= 0 && ann_pair_worse(key[j], id[j], k, v)) {
                key[j + 1] = key[j];
                id[j + 1] = id[j];
                j--;
            }
            key[j + 1] = k;
            id[j + 1] = v;
        }
        return;
    }
    for (int64_t i = n / 2 - 1; i >= 0; i--)
        sift_down(key, id, NULL, (int)n, (int)i);
    ann_topk t = {key, id, NULL, (int)n, (int)n};
    ann_topk_sort(&t);
}
