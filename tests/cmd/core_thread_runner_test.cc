// Tests for cmd/relay/core_thread_runner.h: a closure handed over from
// another thread runs on the event loop's thread, and one whose caller's
// deadline passed is answered UNAVAILABLE and never runs. No sleeps: the
// late case never runs the loop until the caller has given up.
#include "cmd/relay/core_thread_runner.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace relay {
namespace {

TEST(CoreThreadRunnerTest, RunsTheClosureOnTheLoopThreadAndWaitsForIt) {
  asio::io_context io;
  auto work_guard = asio::make_work_guard(io);
  std::thread loop([&io] { io.run(); });
  const std::thread::id loop_id = loop.get_id();
  // Generous: only a loop that never runs would reach it.
  const CoreThreadRunner runner(&io, absl::Seconds(60));

  std::thread::id ran_on;
  bool ran = false;
  const absl::Status status = runner.Run([&] {
    ran_on = std::this_thread::get_id();
    ran = true;
  });

  EXPECT_TRUE(status.ok()) << status;
  EXPECT_TRUE(ran);  // Run returned after the closure, not before
  EXPECT_EQ(ran_on, loop_id);
  EXPECT_NE(ran_on, std::this_thread::get_id());
  work_guard.reset();
  loop.join();
}

TEST(CoreThreadRunnerTest, PastItsDeadlineItIsUnavailableAndTheClosureNeverRuns) {
  asio::io_context io;  // not running: the loop is "busy" for as long as the test likes
  const CoreThreadRunner runner(&io, absl::ZeroDuration());

  std::atomic<bool> ran{false};
  {
    // The closure refers to this scope, which is gone before the loop runs:
    // the runner must not call it then.
    int local = 7;
    const absl::Status status = runner.Run([&ran, &local] { ran = local == 7; });
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  }
  EXPECT_EQ(io.poll(), 1u);  // the handoff itself still runs once...

  EXPECT_FALSE(ran);  // ...and finds its caller gone
}

TEST(CoreThreadRunnerTest, EachCallRunsItsOwnClosureOnce) {
  asio::io_context io;
  auto work_guard = asio::make_work_guard(io);
  std::thread loop([&io] { io.run(); });
  const CoreThreadRunner runner(&io, absl::Seconds(60));

  int runs = 0;  // touched on the loop thread only, read after Run returns
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(runner.Run([&runs] { ++runs; }).ok());

  EXPECT_EQ(runs, 3);
  work_guard.reset();
  loop.join();
}

}  // namespace
}  // namespace relay
