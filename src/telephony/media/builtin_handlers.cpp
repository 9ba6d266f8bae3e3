// The built-in media handlers the embedded default runs until the voice agent
// plugs in: echo (what the callee says comes back, paced) and silence.
#include <vector>

#include "telephony/media/media_handler.hpp"
#include "telephony/media/mulaw.hpp"

namespace clozit::telephony::media {
namespace {

class EchoHandler final : public MediaHandler {
 public:
  void OnStart(const MediaStreamInfo&, MediaOutput& output) override { output_ = &output; }
  void OnAudio(std::span<const int16_t> pcm) override {
    // A full queue means the callee is not draining it; dropping the newest audio is the echo's best choice.
    (void)output_->SendAudio(pcm);
  }
  void OnDtmf(char) override {}
  void OnMark(std::string_view) override {}
  void OnStop(bool) override { output_ = nullptr; }

 private:
  MediaOutput* output_ = nullptr;
};

/// Keeps about a second of silence queued; topped up as the callee speaks and as each second is played
/// (its mark comes back), so the line carries audio even when the callee is silent.
class SilenceHandler final : public MediaHandler {
 public:
  void OnStart(const MediaStreamInfo&, MediaOutput& output) override {
    output_ = &output;
    TopUp();
  }
  void OnAudio(std::span<const int16_t>) override { TopUp(); }
  void OnDtmf(char) override {}
  void OnMark(std::string_view) override { TopUp(); }
  void OnStop(bool) override { output_ = nullptr; }

 private:
  static constexpr size_t kChunkFrames = 50;
  void TopUp() {
    if (!output_ || output_->QueuedFrames() >= kChunkFrames / 2) return;
    static const std::vector<int16_t> kSilence(kChunkFrames * kSamplesPerFrame, 0);
    if (output_->SendAudio(kSilence)) output_->SendMark("silence");
  }
  MediaOutput* output_ = nullptr;
};

}  // namespace

std::unique_ptr<MediaHandler> MakeEchoHandler() { return std::make_unique<EchoHandler>(); }
std::unique_ptr<MediaHandler> MakeSilenceHandler() { return std::make_unique<SilenceHandler>(); }

Result<MediaHandlerFactory> BuiltInHandler(std::string_view name) {
  if (name == "echo") return MediaHandlerFactory([](const MediaStreamInfo&) { return MakeEchoHandler(); });
  if (name == "silence") return MediaHandlerFactory([](const MediaStreamInfo&) { return MakeSilenceHandler(); });
  return Error::InvalidArgument("media.handler",
                                "unknown media handler '" + std::string(name) + "' (built in: echo, silence)");
}

}  // namespace clozit::telephony::media
