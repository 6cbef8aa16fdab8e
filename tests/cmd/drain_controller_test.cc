// Tests for cmd/relay/drain_controller.cc: the graceful shutdown's three
// steps over a real RelayCore, with a fake clock. The loop's timer only says
// when to look again (a zero poll interval here, so each poll_one() is one
// look); whether a deadline passed is the fake clock's say alone, so nothing
// waits on real time.
#include "cmd/relay/drain_controller.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/fake_clock.h"
#include "tests/core/recording_sink.h"

namespace relay {
namespace {

using core::testing::FakeClock;
using core::testing::RecordingSink;

constexpr absl::Duration kGrace = absl::Seconds(20);
constexpr absl::Duration kCloseTimeout = absl::Seconds(5);

class DrainControllerTest : public ::testing::Test {
 protected:
  DrainControllerTest() {
    hooks_.stop_accepting = [this] { ++stop_accepting_calls_; };
    hooks_.close_all = [this] {
      ++close_all_calls_;
      core_.CloseAll(core::CloseReason::kServerShutdown);
      if (close_all_disconnects_) DisconnectAll();
    };
    hooks_.on_closing = [this] { ++on_closing_calls_; };
  }

  std::unique_ptr<DrainController> NewController() {
    return std::make_unique<DrainController>(&io_, &core_, &clock_, kGrace, kCloseTimeout, hooks_,
                                             /*poll_interval=*/absl::ZeroDuration());
  }

  core::ConnectionId Connect() {
    auto sink = std::make_shared<RecordingSink>();
    sinks_.push_back(sink);
    const core::ConnectionId id = core_.Connect({"203.0.113.1:1", "ws", "203.0.113.1"}, sink);
    ids_.push_back(id);
    return id;
  }

  void DisconnectAll() {
    for (core::ConnectionId id : ids_) core_.Disconnect(id, core::CloseReason::kServerShutdown);
    ids_.clear();
  }

  // Lets the controller look `times` more times (fewer if the loop stopped).
  void Look(int times) {
    for (int i = 0; i < times && !io_.stopped(); ++i) io_.poll_one();
  }

  asio::io_context io_;
  FakeClock clock_;
  core::RelayCore core_{core::CoreConfig{}, &clock_};
  DrainController::Hooks hooks_;
  std::vector<std::shared_ptr<RecordingSink>> sinks_;
  std::vector<core::ConnectionId> ids_;
  bool close_all_disconnects_ = true;
  int stop_accepting_calls_ = 0;
  int close_all_calls_ = 0;
  int on_closing_calls_ = 0;
};

TEST_F(DrainControllerTest, BeginStopsAcceptingAndTellsEveryConnectionTheGrace) {
  Connect();
  Connect();
  auto drain = NewController();

  absl::StatusOr<admin::DrainResult> result = drain->Begin(absl::ZeroDuration(), "test");

  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->grace, kGrace);  // zero asks for the default
  EXPECT_EQ(result->connections, 2u);
  EXPECT_TRUE(drain->draining());
  EXPECT_TRUE(core_.draining());
  EXPECT_EQ(stop_accepting_calls_, 1);
  for (const auto& sink : sinks_) {
    const auto told = sink->OfCase(relay::v1::ServerEvent::kServerDraining);
    ASSERT_EQ(told.size(), 1u);
    EXPECT_EQ(told[0]->server_draining().grace_seconds(), 20u);
  }
  EXPECT_EQ(close_all_calls_, 0);
}

TEST_F(DrainControllerTest, ClosesOnlyOnceTheGraceHasPassedOnTheClock) {
  Connect();
  auto drain = NewController();
  ASSERT_TRUE(drain->Begin(absl::ZeroDuration(), "test").ok());

  Look(100);  // however often it looks, the clock has not moved
  EXPECT_EQ(close_all_calls_, 0);
  clock_.Advance(kGrace - absl::Milliseconds(1));
  Look(10);
  EXPECT_EQ(close_all_calls_, 0);
  EXPECT_EQ(on_closing_calls_, 0);

  clock_.Advance(absl::Milliseconds(1));
  Look(1);

  EXPECT_EQ(close_all_calls_, 1);
  EXPECT_EQ(on_closing_calls_, 1);
}

TEST_F(DrainControllerTest, AGraceAskedForWinsOverTheDefault) {
  Connect();
  auto drain = NewController();
  absl::StatusOr<admin::DrainResult> result = drain->Begin(absl::Seconds(3), "relayctl drain");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->grace, absl::Seconds(3));

  clock_.Advance(absl::Seconds(2));
  Look(10);
  EXPECT_EQ(close_all_calls_, 0);
  clock_.Advance(absl::Seconds(1));
  Look(1);
  EXPECT_EQ(close_all_calls_, 1);
}

TEST_F(DrainControllerTest, ClosesAtOnceWhenEveryoneLeftBeforeTheGrace) {
  Connect();
  auto drain = NewController();
  ASSERT_TRUE(drain->Begin(absl::ZeroDuration(), "test").ok());
  Look(5);
  ASSERT_EQ(close_all_calls_, 0);

  DisconnectAll();  // the clients reconnected elsewhere
  Look(1);

  EXPECT_EQ(close_all_calls_, 1);
}

TEST_F(DrainControllerTest, WithNoConnectionsItClosesAndStopsTheLoopAtOnce) {
  auto drain = NewController();

  ASSERT_TRUE(drain->Begin(absl::ZeroDuration(), "test").ok());

  EXPECT_EQ(close_all_calls_, 1);
  EXPECT_EQ(on_closing_calls_, 1);
  EXPECT_TRUE(io_.stopped());
}

TEST_F(DrainControllerTest, StopsTheLoopOnceTheLastClosedConnectionIsGone) {
  Connect();
  close_all_disconnects_ = false;  // clients still finishing their close handshakes
  auto drain = NewController();
  ASSERT_TRUE(drain->Begin(absl::ZeroDuration(), "test").ok());
  clock_.Advance(kGrace);
  Look(1);
  ASSERT_EQ(close_all_calls_, 1);
  Look(10);
  EXPECT_FALSE(io_.stopped());

  DisconnectAll();
  Look(1);

  EXPECT_TRUE(io_.stopped());
}

TEST_F(DrainControllerTest, GivesUpOnStragglersAfterTheCloseTimeout) {
  Connect();
  close_all_disconnects_ = false;  // a peer that never completes its close
  auto drain = NewController();
  ASSERT_TRUE(drain->Begin(absl::ZeroDuration(), "test").ok());
  clock_.Advance(kGrace);
  Look(1);
  ASSERT_EQ(close_all_calls_, 1);

  clock_.Advance(kCloseTimeout - absl::Milliseconds(1));
  Look(10);
  EXPECT_FALSE(io_.stopped());
  clock_.Advance(absl::Milliseconds(1));
  Look(1);

  EXPECT_TRUE(io_.stopped());
  EXPECT_EQ(core_.OpenConnections(), 1u);  // given up on, not waited for
}

TEST_F(DrainControllerTest, ASecondBeginIsRefusedAndChangesNothing) {
  Connect();
  auto drain = NewController();
  ASSERT_TRUE(drain->Begin(absl::ZeroDuration(), "SIGTERM").ok());

  absl::StatusOr<admin::DrainResult> again = drain->Begin(absl::Seconds(1), "relayctl drain");

  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stop_accepting_calls_, 1);
  EXPECT_EQ(sinks_[0]->OfCase(relay::v1::ServerEvent::kServerDraining).size(), 1u);
  clock_.Advance(absl::Seconds(1));  // the refused call's shorter grace does not apply
  Look(10);
  EXPECT_EQ(close_all_calls_, 0);
}

}  // namespace
}  // namespace relay
