"""The fair queue's rules as plain functions: order, packs, gathering, places, waits and fair shares (no threads)."""

from __future__ import annotations

from mnistlab.scheduling import (
    SERVER_OWNER,
    Waiting,
    credit,
    fair_order,
    is_gathering,
    next_job,
    pack_of,
    place_of,
    queued_jobs,
    wait_estimate,
)

DENSE = ("mnist", 0, 32, 1000)  # a pack key: networks with it read the same batches
OTHER_SEED = ("mnist", 1, 32, 1000)


def waiting(key: str, *owners: str, at: float = 0.0, pack: tuple | None = None) -> Waiting:
    return Waiting(key, owners, at, pack)


def keys(networks) -> list[str]:
    return [network.key for network in networks]


def test_who_has_trained_least_goes_first_then_who_waited_longest():
    queue = [waiting("busy", "ali", at=1.0), waiting("fresh", "zeynep", at=2.0), waiting("late", "ece", at=3.0)]
    assert keys(fair_order(queue, {"ali": 600.0})) == ["fresh", "late", "busy"]
    assert keys(fair_order(queue, {})) == ["busy", "fresh", "late"]


def test_a_network_several_students_follow_counts_its_least_trained_follower_and_the_server_counts_as_none():
    queue = [waiting("shared", "ali", "zeynep", at=2.0), waiting("ece", "ece", at=1.0), waiting("quick", SERVER_OWNER, at=3.0)]
    trained = {"ali": 900.0, "zeynep": 10.0, "ece": 20.0, SERVER_OWNER: 5000.0}
    assert keys(fair_order(queue, trained)) == ["quick", "shared", "ece"]


def test_a_dense_network_takes_along_the_waiting_networks_that_read_its_batches_up_to_the_packs_size():
    order = [waiting(f"n{number}", f"s{number}", pack=DENSE) for number in range(5)]
    order.insert(2, waiting("cnn", "cnn"))
    order.insert(3, waiting("seed", "seed", pack=OTHER_SEED))
    assert keys(pack_of(order[0], order, max_pack=16)) == ["n0", "n1", "n2", "n3", "n4"]
    assert keys(pack_of(order[0], order, max_pack=3)) == ["n0", "n1", "n2"]
    assert keys(pack_of(order[2], order, max_pack=16)) == ["cnn"]  # a CNN trains alone


def test_a_pack_is_one_place_in_the_queue():
    order = [
        waiting("a", "a", pack=DENSE),
        waiting("cnn", "cnn"),
        waiting("b", "b", pack=DENSE),
        waiting("seed", "seed", pack=OTHER_SEED),
        waiting("c", "c", pack=DENSE),
    ]
    jobs = queued_jobs(order, max_pack=16)
    assert [keys(job) for job in jobs] == [["a", "b", "c"], ["cnn"], ["seed"]]
    assert [place_of(key, jobs) for key in ("a", "b", "c", "cnn", "seed", "gone")] == [1, 1, 1, 2, 3, None]
    # A pack that is full leaves the rest for the next job of the same batches.
    assert [keys(job) for job in queued_jobs(order, max_pack=2)] == [["a", "b"], ["cnn"], ["seed"], ["c"]]


def test_a_dense_network_waits_a_moment_for_classmates_but_a_cnn_never_does():
    dense = waiting("dense", "ali", at=10.0, pack=DENSE)
    cnn = waiting("cnn", "zeynep", at=10.5)
    classmate = waiting("classmate", "ece", at=10.4, pack=DENSE)
    assert keys(next_job([dense, cnn], now=11.0, gather_seconds=1.5, max_pack=16)) == ["cnn"]
    assert next_job([dense, classmate], now=11.0, gather_seconds=1.5, max_pack=16) is None
    # Once the first has gathered, it takes the classmates who pressed Train meanwhile, gathering or not.
    assert keys(next_job([dense, classmate], now=11.6, gather_seconds=1.5, max_pack=16)) == ["dense", "classmate"]


def test_gathering_is_waiting_for_classmates_on_a_free_place_not_waiting_in_a_queue():
    assert is_gathering(1, packable=True, free_places=1)
    assert not is_gathering(1, packable=True, free_places=0)  # no place is free: it waits in the queue
    assert not is_gathering(2, packable=True, free_places=1)
    assert not is_gathering(1, packable=False, free_places=1)
    assert not is_gathering(None, packable=True, free_places=1)


def test_the_wait_is_the_time_until_a_place_frees_up_after_the_jobs_ahead():
    # One place, training a job with 30 s left; two jobs of 40 s ahead: 30 + 40 + 40.
    assert wait_estimate([40.0, 40.0], [30.0], free_places=0) == 110.0
    # Two places: the jobs ahead take the place that frees first, one after another.
    assert wait_estimate([40.0], [30.0, 10.0], free_places=0) == 30.0
    assert wait_estimate([], [30.0, 10.0], free_places=0) == 10.0
    # A free place and nothing ahead: no wait; a job past its estimate counts as ending now.
    assert wait_estimate([], [30.0], free_places=1) == 0.0
    assert wait_estimate([], [-5.0], free_places=0) == 0.0


def test_a_networks_seconds_are_shared_equally_by_its_followers():
    trained = {"ali": 10.0}
    after = credit(trained, ["ali", "zeynep"], 30.0)
    assert after == {"ali": 25.0, "zeynep": 15.0}
    assert trained == {"ali": 10.0}  # a new table, the old one unchanged
    assert credit(trained, [], 30.0) == trained
