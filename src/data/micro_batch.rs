//! A batch cut into micro-batches by a budget of padded tokens.
//!
//! Memory and time of a forward + backward pass follow the padded tokens of
//! the tensors it runs on (`rows × longest row`, and attention's
//! `rows × heads × longest²`), not the number of examples. So a training
//! batch is computed as micro-batches of at most `budget` padded tokens whose
//! gradients add up to the batch's ([`crate::train::loss`]): the same code
//! is data parallelism over CPU cores and gradient accumulation on one GPU.
//! Examples are grouped by length, longest first, so each micro-batch is
//! padded only to its own longest example and the most expensive ones are
//! handed out first (the longest-processing-time-first rule, which keeps
//! dynamically scheduled workers evenly busy to the end). With several
//! workers the tail is tapered: the last micro-batches get smaller, so the
//! workers finish a step at nearly the same time instead of one waiting
//! for the other's last full-size micro-batch.

/// With tapering, a micro-batch holds at most this fraction of the tokens
/// still to plan (a third: the tail shrinks geometrically, ratio ⅔).
const TAPER: usize = 3;

/// Indices into `lens` grouped into micro-batches: examples sorted by
/// length, longest first (ties by index), packed greedily while
/// `rows × longest ≤ budget`. An example longer than `budget` is a
/// micro-batch of its own. With `taper`, a micro-batch's budget is also at
/// most a third of the tokens not yet planned (but never less than its
/// first example). Depends only on the lengths, the budget and `taper`
/// (not on how many workers compute it), so the step's result does not
/// either.
pub fn micro_batches(lens: &[usize], budget: usize, taper: bool) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(lens[i]), i));
    let mut out: Vec<Vec<usize>> = Vec::new();
    let (mut longest, mut group_budget) = (0, budget);
    let mut remaining: usize = lens.iter().sum();
    for i in order {
        match out.last_mut() {
            // Sorted longest first: the group's longest is its first row.
            Some(group) if (group.len() + 1) * longest <= group_budget => group.push(i),
            _ => {
                longest = lens[i].max(1);
                group_budget = if taper { budget.min(longest.max(remaining.div_ceil(TAPER))) } else { budget };
                out.push(vec![i]);
            }
        }
        remaining -= lens[i];
    }
    out
}

/// Padded tokens of the micro-batches (`rows × longest`, summed).
pub fn padded_tokens(lens: &[usize], groups: &[Vec<usize>]) -> usize {
    groups.iter().map(|g| g.len() * g.iter().map(|&i| lens[i]).max().unwrap_or(0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_length_within_the_budget() {
        let lens = [5, 9, 3, 9, 4, 12, 2];
        let g = micro_batches(&lens, 20, false);
        // 12 alone (2 × 12 > 20), then 9 + 9 (18), then 5 + 4 + 3 (15 ≤ 20) and 2 (4 × 5 = 20).
        assert_eq!(g, vec![vec![5], vec![1, 3], vec![0, 4, 2, 6]]);
        assert_eq!(padded_tokens(&lens, &g), 12 + 18 + 20);
        let mut all: Vec<usize> = g.concat();
        all.sort();
        assert_eq!(all, (0..lens.len()).collect::<Vec<_>>());
    }

    #[test]
    fn long_examples_stand_alone_and_empty_input_gives_nothing() {
        assert_eq!(micro_batches(&[30, 40], 16, false), vec![vec![1], vec![0]]);
        assert!(micro_batches(&[], 16, true).is_empty());
        assert_eq!(micro_batches(&[1, 1, 1], 1000, false), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn tapering_makes_the_last_micro_batches_smaller() {
        let lens = vec![10; 40]; // 400 tokens
        let plain = micro_batches(&lens, 80, false);
        assert_eq!(plain.iter().map(Vec::len).collect::<Vec<_>>(), vec![8; 5]);
        // Budgets min(80, ⅓ of what is left): 80 (400 left), 80 (320), 80 (240), 54 (160), …
        let tapered = micro_batches(&lens, 80, true);
        let rows: Vec<usize> = tapered.iter().map(Vec::len).collect();
        assert_eq!(rows, vec![8, 8, 8, 5, 3, 2, 2, 1, 1, 1, 1]);
        assert_eq!(rows.iter().sum::<usize>(), 40);
        assert!(rows.windows(2).all(|w| w[0] >= w[1]));
    }
}
