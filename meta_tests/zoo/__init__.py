"""The zoo: faulty backends and correct alternatives that measure the suite.

Every faulty member has one realistic fault and must fail at least one clause at
the suite's default settings; every correct alternative must pass every clause.
``MEMBERS`` is the committed catalogue: for each fault, the clauses it must trip
(checked by meta_tests/test_zoo.py, which runs each fault against each of them),
and whether it only shows on particular inputs, so the zoo also measures how well
the generators search. Run one member with
``pytest --backend meta_tests.zoo.MODULE:Class``; run them all with
``python meta_tests/kill_report.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("scale", "rate", "randomness", "mode", "running statistics", "numerics", "layout", "dtype",
         "state and API", "errors", "gradients")


@dataclass(frozen=True)
class Member:
    target: str                 # module:Class under meta_tests.zoo
    family: str                 # the spec family it touches: the run is restricted to it
    kind: str = ""              # a KINDS entry for faults; "" for a correct alternative
    trips: tuple[str, ...] = ()  # clause ids this fault must fail (the committed mapping)
    trigger: str = ""           # the particular inputs it needs, "" when any input shows it
    subset: bool = False        # part of the CI subset

    @property
    def backend(self) -> str:
        return f"meta_tests.zoo.{self.target}"

    @property
    def is_fault(self) -> bool:
        return bool(self.kind)


def _fault(target, kind, trips, trigger="", subset=False, family=None):
    family = family or ("dropout" if trips[0].startswith("dropout") else "batchnorm")
    return Member(target, family, kind, tuple(trips), trigger, subset)


def _alternative(target, family, subset=True):
    """A correct implementation. CI runs one per family (subset=True), chosen as the one
    that departs most from the reference's arithmetic; the kill report runs them all."""
    return Member(target, family, subset=subset)


FAULTS = [
    _fault("scale:NoScale", "scale", ["dropout.train.survivor-scale", "dropout.train.mask-values",
                                      "dropout.train.mean-preservation"], subset=True),
    _fault("scale:ScaleByKeepProbability", "scale", ["dropout.train.survivor-scale"]),
    _fault("scale:ScaleByInverseRate", "scale", ["dropout.train.survivor-scale"], trigger="p != 0.5"),
    _fault("scale:ScaleHeldInHalf", "scale", ["dropout.train.survivor-scale"], trigger="float32/float64, p with an inexact half scale"),
    _fault("scale:LargeTensorUnscaled", "scale", ["dropout.train.mean-preservation"], trigger="tensors over 10,000 units", subset=True),
    _fault("rate:PReadAsKeepProbability", "rate", ["dropout.train.drop-rate"], trigger="p != 0.5", subset=True),
    _fault("rate:RateOffByTwoPercent", "rate", ["dropout.train.drop-rate"]),
    _fault("rate:HighRateClamped", "rate", ["dropout.train.drop-rate"], trigger="p > 0.9"),
    _fault("rate:PRoundedToInputDtype", "rate", ["dropout.train.drop-rate"],
           trigger="float16/bfloat16, p = 0.9999 (rounds to 1)", subset=True),
    _fault("rate:PZeroMeansDefault", "rate", ["dropout.edge.p-zero"], trigger="p = 0"),
    _fault("rate:POneDisablesDropout", "rate", ["dropout.edge.p-one"], trigger="p = 1"),
    _fault("rate:POneGivesNaN", "rate", ["dropout.edge.p-one"], trigger="p = 1"),
    _fault("randomness:MaskSharedAcrossBatch", "randomness", ["dropout.train.batch-independence"], subset=True),
    _fault("randomness:MaskSharedAcrossCalls", "randomness", ["dropout.train.call-independence"]),
    _fault("randomness:MaskSharedAcrossPositions", "randomness", ["dropout.train.serial-independence"]),
    _fault("randomness:ChannelDropout", "randomness", ["dropout.train.serial-independence"], trigger="rank >= 3"),
    _fault("randomness:PeriodicGenerator", "randomness", ["dropout.train.serial-independence"],
           trigger="tensors over 4,096 units", subset=True),
    _fault("randomness:FixedCountPerCall", "randomness", ["dropout.train.dispersion"], subset=True),
    _fault("randomness:DeterministicPattern", "randomness", ["dropout.train.call-independence"]),
    _fault("randomness:FirstUnitNeverDropped", "randomness", ["dropout.train.position-uniformity"]),
    _fault("randomness:AntitheticHalves", "randomness", ["dropout.train.serial-independence"]),
    _fault("mode:DropoutEvalStillDrops", "mode", ["dropout.eval.identity"], subset=True),
    _fault("mode:DropoutEvalRescales", "mode", ["dropout.eval.identity"]),
    _fault("mode:BatchNormEvalUsesBatchStats", "mode", ["batchnorm.eval.output"]),
    _fault("mode:BatchNormEvalUpdatesStats", "mode", ["batchnorm.eval.frozen-stats"], subset=True),
    _fault("mode:BatchNormTrainUsesRunningStats", "mode", ["batchnorm.train.output"]),
    _fault("mode:UntrackedEvalUsesInitialStats", "mode", ["batchnorm.untracked"]),
    _fault("mode:DropoutEvalLatches", "mode", ["dropout.mode.switching"], trigger="train after eval"),
    _fault("mode:BatchNormFrozenAfterEval", "mode", ["batchnorm.mode.switching"], trigger="train after eval"),
    _fault("running_stats:BiasedRunningVariance", "running statistics", ["batchnorm.train.running-update"], subset=True),
    _fault("running_stats:InvertedMomentum", "running statistics", ["batchnorm.train.running-update"]),
    _fault("running_stats:MomentumNoneIgnored", "running statistics", ["batchnorm.train.cumulative-average"]),
    _fault("running_stats:CumulativeAverageOffByOne", "running statistics", ["batchnorm.train.cumulative-average"]),
    _fault("running_stats:BatchesNotTracked", "running statistics", ["batchnorm.train.batches-tracked"]),
    _fault("running_stats:RunningVarStartsAtZero", "running statistics", ["batchnorm.init.running-stats"]),
    _fault("running_stats:RunningVarTakesStd", "running statistics", ["batchnorm.train.running-update"]),
    _fault("numerics:EpsOutsideSqrt", "numerics", ["batchnorm.train.output"], trigger="tiny variance or large eps", subset=True),
    _fault("numerics:EpsMissing", "numerics", ["batchnorm.train.output"], trigger="tiny variance"),
    _fault("numerics:OnePassVariance", "numerics", ["batchnorm.train.output"], trigger="large-mean inputs", subset=True),
    _fault("numerics:UnbiasedVarianceNormalizes", "numerics", ["batchnorm.train.output"]),
    _fault("numerics:HalfPrecisionRsqrt", "numerics", ["batchnorm.train.output"], trigger="float32/float64"),
    _fault("layout:ChannelAxisFoundBySize", "layout", ["batchnorm.train.output"], trigger="batch size equal to channels", subset=True),
    _fault("layout:ChannelsLastGuessed", "layout", ["batchnorm.train.output"], trigger="last axis equal to channels"),
    _fault("layout:FortranOrderReshape", "layout", ["batchnorm.train.output"], trigger="rank >= 3"),
    _fault("layout:StridesIgnored", "layout", ["batchnorm.train.output"], trigger="strided or channels-last inputs"),
    _fault("dtype:DropoutHalfReturnsFloat32", "dtype", ["dropout.output.shape-dtype"], trigger="float16/bfloat16"),
    _fault("dtype:BatchNormHalfReturnsFloat32", "dtype", ["batchnorm.output.shape-dtype"], trigger="float16/bfloat16"),
    _fault("dtype:HalfPrecisionAccumulation", "dtype", ["batchnorm.train.output"], trigger="float16/bfloat16", subset=True),
    _fault("dtype:DropoutFloat64ComputedInFloat32", "dtype", ["dropout.train.survivor-scale"], trigger="float64"),
    _fault("dtype:BatchNormFloat64ComputedInFloat32", "dtype", ["batchnorm.train.output"], trigger="float64"),
    _fault("state_api:AffineFalseKeepsParameters", "state and API", ["batchnorm.init.no-affine"], subset=True),
    _fault("state_api:WeightAndBiasSwapped", "state and API", ["batchnorm.train.output"]),
    _fault("state_api:WeightInitUniform", "state and API", ["batchnorm.init.affine"]),
    _fault("state_api:AffineNotTrainable", "state and API", ["batchnorm.init.affine"]),
    _fault("state_api:UntrackedKeepsBuffers", "state and API", ["batchnorm.untracked"]),
    _fault("state_api:InplaceIgnored", "state and API", ["dropout.inplace"], trigger="inplace=True", subset=True),
    _fault("state_api:InputModifiedWhenNotInplace", "state and API", ["dropout.inplace"], trigger="inplace=False"),
    _fault("state_api:RunningStatsKeptInFloat32", "dtype", ["batchnorm.init.running-stats", "batchnorm.train.running-update"],
           trigger="float16, bfloat16 or float64"),
    _fault("state_api:CounterReportedAsNone", "state and API", ["batchnorm.init.running-stats", "batchnorm.train.batches-tracked"]),
    _fault("errors:InvalidRateClamped", "errors", ["dropout.init.p-range"], subset=True),
    _fault("errors:RateAboveOneAccepted", "errors", ["dropout.init.p-range"], trigger="p > 1"),
    _fault("errors:RateCheckedAtFirstCall", "errors", ["dropout.init.p-range"]),
    _fault("errors:SingleValueAccepted", "errors", ["batchnorm.train.single-value-error"], subset=True),
    _fault("errors:SingleValueWrongError", "errors", ["batchnorm.train.single-value-error"]),
    _fault("gradients:DropoutBackwardIgnoresMask", "gradients", ["dropout.grad.mask"], subset=True),
    _fault("gradients:DropoutBackwardRedrawsMask", "gradients", ["dropout.grad.mask"]),
    _fault("gradients:DropoutBackwardUnscaled", "gradients", ["dropout.grad.mask"], trigger="0 < p < 1"),
    _fault("gradients:BatchNormBackwardStatsConstant", "gradients", ["batchnorm.grad.reference"], subset=True),
    _fault("gradients:BatchNormWeightGradFromInput", "gradients", ["batchnorm.grad.reference"], trigger="affine=True"),
    _fault("gradients:BatchNormEvalBackwardThroughBatchStats", "gradients", ["batchnorm.grad.reference"], trigger="eval mode"),
    # Blind spots of default state and vacuous evidence (meta_tests/zoo/blind_spots.py).
    _fault("blind_spots:AffineBiasBeforeWeight", "state and API", ["batchnorm.train.output", "batchnorm.eval.output"],
           trigger="drawn weight and bias", subset=True),
    _fault("blind_spots:InputGradientIgnoresWeight", "gradients", ["batchnorm.grad.reference"],
           trigger="drawn weight", subset=True),
    _fault("blind_spots:EvalIgnoresRunningMean", "running statistics", ["batchnorm.eval.output"],
           trigger="drawn running_mean"),
    _fault("blind_spots:DropoutOutputsAllZeros", "scale", ["dropout.train.survivor-scale", "dropout.train.mask-values",
                                                          "dropout.train.drop-rate"], subset=True),
    _fault("blind_spots:RunningStatsHidden", "state and API", ["batchnorm.eval.frozen-stats"]),
    _fault("blind_spots:OutputScaledJustOutsideBound", "numerics", ["batchnorm.train.output"], trigger="float32/float64"),
    _fault("blind_spots:RunningStatsJustOutsideBound", "numerics", ["batchnorm.train.running-update",
                                                                   "batchnorm.train.cumulative-average"],
           trigger="float32/float64"),
]

LN, RMS = "layernorm", "rmsnorm"
FAULTS += [
    _fault("layernorm_faults:LayerNormWeightInitUniform", "state and API",
           ["layernorm.init.affine", "layernorm.init.weight-without-bias"], family=LN),
    _fault("layernorm_faults:LayerNormBiasFlagIgnored", "state and API", ["layernorm.init.no-bias"], trigger="bias=False",
           family=LN),
    _fault("layernorm_faults:LayerNormBiasFalseDropsWeight", "state and API", ["layernorm.init.weight-without-bias"],
           trigger="bias=False", family=LN),
    _fault("layernorm_faults:LayerNormAffineFlagIgnored", "state and API",
           ["layernorm.init.no-affine", "layernorm.train.output", "layernorm.eval.output", "layernorm.mode.switching",
            "layernorm.grad.reference"], trigger="elementwise_affine=False", family=LN),
    _fault("layernorm_faults:LayerNormBiasBeforeWeight", "state and API",
           ["layernorm.train.output", "layernorm.eval.output", "layernorm.mode.switching"],
           trigger="drawn weight and bias", family=LN),
    _fault("layernorm_faults:LayerNormWeightAndBiasSwapped", "state and API", ["layernorm.train.output"],
           trigger="drawn weight and bias", family=LN),
    _fault("layernorm_faults:LayerNormAllButFirstAxis", "layout", ["layernorm.train.output"],
           trigger="normalized_shape shorter than the axes after the first", subset=True, family=LN),
    _fault("layernorm_faults:LayerNormLastAxisOnly", "layout", ["layernorm.train.output"],
           trigger="normalized_shape of 2+ axes", family=LN),
    _fault("layernorm_faults:LayerNormStridesIgnored", "layout", ["layernorm.train.output"],
           trigger="strided or channels-last inputs", family=LN),
    _fault("layernorm_faults:LayerNormUnbiasedVariance", "numerics", ["layernorm.train.output"], family=LN),
    _fault("layernorm_faults:LayerNormEpsOutsideSqrt", "numerics", ["layernorm.train.output"],
           trigger="tiny variance or large eps", family=LN),
    _fault("layernorm_faults:LayerNormOnePassVariance", "numerics", ["layernorm.train.output"],
           trigger="large-mean inputs", family=LN),
    _fault("layernorm_faults:LayerNormHalfPrecisionAccumulation", "dtype", ["layernorm.train.output"],
           trigger="float16/bfloat16", family=LN),
    _fault("layernorm_faults:LayerNormFloat64ComputedInFloat32", "dtype", ["layernorm.train.output"],
           trigger="float64", family=LN),
    _fault("layernorm_faults:LayerNormHalfReturnsFloat32", "dtype", ["layernorm.output.shape-dtype"],
           trigger="float16/bfloat16", family=LN),
    _fault("layernorm_faults:LayerNormEvalUsesInitialStats", "mode", ["layernorm.eval.output"], family=LN),
    _fault("layernorm_faults:LayerNormEvalKeepsTrainStats", "mode", ["layernorm.mode.switching"],
           trigger="eval after train", family=LN),
    _fault("layernorm_faults:LayerNormShapeNotValidated", "errors", ["layernorm.input.shape-mismatch"], family=LN),
    _fault("layernorm_faults:LayerNormBackwardStatsConstant", "gradients", ["layernorm.grad.reference"],
           subset=True, family=LN),
    _fault("layernorm_faults:LayerNormInputGradIgnoresWeight", "gradients", ["layernorm.grad.reference"],
           trigger="drawn weight", family=LN),
    _fault("layernorm_faults:LayerNormWeightGradFromInput", "gradients", ["layernorm.grad.reference"],
           trigger="elementwise_affine=True", family=LN),
    _fault("layernorm_faults:LayerNormParamGradHalfAccumulation", "gradients", ["layernorm.grad.accumulation"],
           trigger="float16/bfloat16, 1,000+ leading positions", family=LN),
    _fault("rmsnorm_faults:RMSNormOnePlusWeight", "state and API",
           ["rmsnorm.init.weight", "rmsnorm.train.output", "rmsnorm.eval.output", "rmsnorm.mode.switching",
            "rmsnorm.eps-none"],
           family=RMS),
    _fault("rmsnorm_faults:RMSNormAffineFlagIgnored", "state and API", ["rmsnorm.init.no-affine", "rmsnorm.grad.reference"],
           trigger="elementwise_affine=False", family=RMS),
    _fault("rmsnorm_faults:RMSNormCentered", "numerics", ["rmsnorm.train.output"], family=RMS),
    _fault("rmsnorm_faults:RMSNormEpsOutsideSqrt", "numerics", ["rmsnorm.train.output"],
           trigger="tiny scale or large eps", family=RMS),
    _fault("rmsnorm_faults:RMSNormSumOfSquares", "numerics", ["rmsnorm.train.output"],
           trigger="slices of 2+ values", family=RMS),
    _fault("rmsnorm_faults:RMSNormLastAxisOnly", "layout", ["rmsnorm.train.output"],
           trigger="normalized_shape of 2+ axes", family=RMS),
    _fault("rmsnorm_faults:RMSNormHalfPrecisionAccumulation", "dtype", ["rmsnorm.train.output"],
           trigger="float16/bfloat16", family=RMS),
    _fault("rmsnorm_faults:RMSNormEpsNoneInputDtype", "numerics", ["rmsnorm.eps-none"],
           trigger="eps=None, float16/bfloat16", subset=True, family=RMS),
    _fault("rmsnorm_faults:RMSNormEpsNoneFixed", "numerics", ["rmsnorm.eps-none", "rmsnorm.train.output"],
           trigger="eps=None", family=RMS),
    _fault("rmsnorm_faults:RMSNormEpsNoneFloat32ForFloat64", "dtype", ["rmsnorm.eps-none"],
           trigger="eps=None, float64", family=RMS),
    _fault("rmsnorm_faults:RMSNormEpsNoneZero", "numerics", ["rmsnorm.eps-none"], trigger="eps=None", family=RMS),
    _fault("rmsnorm_faults:RMSNormHalfReturnsFloat32", "dtype", ["rmsnorm.output.shape-dtype"],
           trigger="float16/bfloat16", family=RMS),
    _fault("rmsnorm_faults:RMSNormEvalUsesUnitScale", "mode", ["rmsnorm.eval.output"], family=RMS),
    _fault("rmsnorm_faults:RMSNormEvalKeepsTrainRms", "mode", ["rmsnorm.mode.switching"],
           trigger="eval after train", subset=True, family=RMS),
    _fault("rmsnorm_faults:RMSNormShapeNotValidated", "errors", ["rmsnorm.input.shape-mismatch"], family=RMS),
    _fault("rmsnorm_faults:RMSNormBackwardRmsConstant", "gradients", ["rmsnorm.grad.reference"], family=RMS),
    _fault("rmsnorm_faults:RMSNormWeightGradFromInput", "gradients", ["rmsnorm.grad.reference"],
           trigger="elementwise_affine=True", family=RMS),
    _fault("rmsnorm_faults:RMSNormWeightGradHalfAccumulation", "gradients", ["rmsnorm.grad.accumulation"],
           trigger="float16/bfloat16, 1,000+ leading positions", family=RMS),
]


def _channel(target, kind, trips, trigger="", subset=False):
    return _fault(f"channel_faults:{target}", kind, [f"channel-dropout.{t}" for t in trips], trigger, subset,
                  "channel-dropout")


def _alpha(target, kind, trips, trigger="", subset=False, family="alpha-dropout"):
    return _fault(f"alpha_faults:{target}", kind, [f"{family}.{t}" for t in trips], trigger, subset, family)


def _feature(target, kind, trips, trigger="", subset=False):
    return _alpha(target, kind, trips, trigger, subset, "feature-alpha-dropout")


FAULTS += [
    _channel("ChannelElementwise", "randomness", ["train.mask-values", "unbatched", "mode.switching"], subset=True),
    _channel("ChannelNoScale", "scale", ["train.survivor-scale", "train.mask-values", "train.mean-preservation",
                                         "grad.mask"]),
    _channel("Dropout2dElementwiseFor3d", "randomness", ["train.mask-values"], trigger="3-D input to Dropout2d"),
    _channel("Dropout2d3dAsUnbatched", "layout", ["dropout2d.3d-input"], trigger="3-D input to Dropout2d"),
    _channel("ChannelUnbatchedAsBatched", "layout", ["unbatched"], trigger="input without a batch axis"),
    _channel("ChannelScaleHeldInHalf", "dtype", ["train.survivor-scale"],
             trigger="float32/float64 with an inexact half scale; p = 0.99999"),
    _channel("ChannelEvalRescales", "mode", ["eval.identity", "mode.switching"]),
    _channel("ChannelEvalLatches", "mode", ["mode.switching"], trigger="train after eval"),
    _channel("ChannelPZeroMeansDefault", "rate", ["edge.p-zero"], trigger="p = 0"),
    _channel("ChannelPOneGivesNaN", "rate", ["edge.p-one"], trigger="p = 1"),
    _channel("ChannelRateNotValidated", "errors", ["init.p-range"]),
    _channel("ChannelHalfReturnsFloat32", "dtype", ["output.shape-dtype"], trigger="float16/bfloat16"),
    _channel("ChannelInplaceIgnored", "state and API", ["inplace"], trigger="inplace=True"),
    _channel("ChannelBackwardRedrawsMask", "gradients", ["grad.mask"]),
    _channel("ChannelRateAsKeepProbability", "rate", ["train.drop-rate"], trigger="p != 0.5"),
    _channel("ChannelFirstNeverDropped", "randomness", ["train.position-uniformity"]),
    _channel("ChannelMaskSharedAcrossBatch", "randomness", ["train.batch-independence"], trigger="batched input"),
    _channel("ChannelMaskSharedAcrossCalls", "randomness", ["train.call-independence"]),
    _channel("ChannelFixedCountPerCall", "randomness", ["train.dispersion"]),
    _alpha("AlphaScaleWithoutAlphaTerm", "scale", ["train.survivor-scale", "train.mask-values",
                                                   "train.moment-preservation"], subset=True),
    _alpha("AlphaSeluAlphaUnscaled", "numerics", ["train.mask-values", "train.survivor-scale"]),
    _alpha("AlphaConstantsHeldInHalf", "numerics", ["train.survivor-scale", "train.drop-rate"],
           trigger="float32/float64; float16 at p = 1 - 1e-11"),
    _alpha("AlphaEvalStillDrops", "mode", ["eval.identity", "mode.switching"]),
    _alpha("AlphaEvalLatches", "mode", ["mode.switching"], trigger="train after eval"),
    _alpha("AlphaPZeroMeansDefault", "rate", ["edge.p-zero"], trigger="p = 0"),
    _alpha("AlphaPOneGivesNaN", "rate", ["edge.p-one"], trigger="p = 1", subset=True),
    _alpha("AlphaRateNotValidated", "errors", ["init.p-range"]),
    _alpha("AlphaHalfReturnsFloat32", "dtype", ["output.shape-dtype"], trigger="float16/bfloat16"),
    _alpha("AlphaInplaceIgnored", "state and API", ["inplace"], trigger="inplace=True"),
    _alpha("AlphaBackwardIgnoresMask", "gradients", ["grad.mask"], trigger="0 < p < 1"),
    _alpha("AlphaRateAsKeepProbability", "rate", ["train.drop-rate"], trigger="p != 0.5"),
    _alpha("AlphaMaskSharedAcrossCalls", "randomness", ["train.call-independence"]),
    _feature("FeatureAlphaElementwise", "randomness", ["train.mask-values", "unbatched", "mode.switching"]),
    _feature("FeatureAlphaUnbatchedAsBatched", "layout", ["unbatched", "train.mask-values"],
             trigger="input without a batch axis", subset=True),
    _feature("FeatureAlphaScaleWithoutAlphaTerm", "scale", ["train.survivor-scale", "train.mask-values",
                                                            "train.moment-preservation"]),
    _feature("FeatureAlphaEvalStillDrops", "mode", ["eval.identity"]),
    _feature("FeatureAlphaEvalLatches", "mode", ["mode.switching"], trigger="train after eval"),
    _feature("FeatureAlphaPZeroMeansDefault", "rate", ["edge.p-zero"], trigger="p = 0"),
    _feature("FeatureAlphaPOneGivesNaN", "rate", ["edge.p-one"], trigger="p = 1"),
    _feature("FeatureAlphaRateNotValidated", "errors", ["init.p-range"]),
    _feature("FeatureAlphaHalfReturnsFloat32", "dtype", ["output.shape-dtype"], trigger="float16/bfloat16"),
    _feature("FeatureAlphaInplaceIgnored", "state and API", ["inplace"], trigger="inplace=True"),
    _feature("FeatureAlphaBackwardIgnoresMask", "gradients", ["grad.mask"], trigger="0 < p < 1"),
    _feature("FeatureAlphaRateAsKeepProbability", "rate", ["train.drop-rate"], trigger="p != 0.5"),
    _feature("FeatureAlphaMaskSharedAcrossCalls", "randomness", ["train.call-independence"]),
]

ALTERNATIVES = [
    _alternative("alternatives:Baseline", "dropout", subset=False),
    _alternative("alternatives:Baseline", "batchnorm", subset=False),
    _alternative("alternatives:PhiloxStream", "dropout"),
    _alternative("alternatives:Float64Internals", "dropout", subset=False),
    _alternative("alternatives:Float64Internals", "batchnorm", subset=False),
    _alternative("alternatives:ReorderedOperations", "dropout", subset=False),
    _alternative("alternatives:ReorderedOperations", "batchnorm"),
    _alternative("alternatives:ChannelsLastInternally", "batchnorm", subset=False),
    _alternative("alternatives:TorchChannelsLast", "batchnorm", subset=False),
    _alternative("errors:RateCheckedAtFirstCallDeclared", "dropout", subset=False),
    _alternative("trailing_alternatives:TrailingBaseline", LN, subset=False),
    _alternative("trailing_alternatives:TrailingBaseline", RMS, subset=False),
    _alternative("trailing_alternatives:TrailingFoldedAndRounded", LN),
    _alternative("trailing_alternatives:TrailingFoldedAndRounded", RMS),
] + [_alternative(target, family, subset=target.endswith("MaskAsScaledOnes"))
     for target in ("random_alternatives:RandomBaseline", "random_alternatives:MaskAsScaledOnes")
     for family in ("channel-dropout", "alpha-dropout", "feature-alpha-dropout")]

_GN, _IN = "groupnorm", "instancenorm"
FAULTS += [
    _fault("groupnorm_faults:GroupsInterleaved", "layout", ["groupnorm.train.output", "groupnorm.eval.output"],
           trigger="1 < num_groups < num_channels", subset=True, family=_GN),
    _fault("groupnorm_faults:StatisticsPerChannel", "layout", ["groupnorm.train.output"], trigger="num_groups < num_channels",
           family=_GN),
    _fault("groupnorm_faults:GroupsIgnored", "layout", ["groupnorm.train.output"], trigger="num_groups > 1", family=_GN),
    _fault("groupnorm_faults:StridesIgnored", "layout", ["groupnorm.train.output"],
           trigger="strided or channels-last inputs", family=_GN),
    _fault("groupnorm_faults:AffinePerGroup", "state and API", ["groupnorm.train.output"],
           trigger="affine, drawn weight and bias", family=_GN),
    _fault("groupnorm_faults:UnbiasedGroupVariance", "numerics", ["groupnorm.train.output"], family=_GN),
    _fault("groupnorm_faults:EpsOutsideSqrt", "numerics", ["groupnorm.train.output"], trigger="tiny variance or large eps",
           family=_GN),
    _fault("groupnorm_faults:OnePassVariance", "numerics", ["groupnorm.train.output"], trigger="large-mean inputs",
           family=_GN),
    _fault("groupnorm_faults:HalfPrecisionAccumulation", "dtype", ["groupnorm.train.output"], trigger="float16/bfloat16",
           family=_GN),
    _fault("groupnorm_faults:EvalReusesTrainStatistics", "mode", ["groupnorm.mode.switching"],
           trigger="eval after a train call on the same shape", subset=True, family=_GN),
    _fault("groupnorm_faults:TracksRunningStatistics", "mode", ["groupnorm.eval.output"], family=_GN),
    _fault("groupnorm_faults:AffineFalseKeepsParameters", "state and API", ["groupnorm.init.no-affine"], family=_GN),
    _fault("groupnorm_faults:BiasFalseIgnored", "state and API", ["groupnorm.init.no-bias"], family=_GN),
    _fault("groupnorm_faults:ParametersNotTrainable", "state and API", ["groupnorm.init.affine"], family=_GN),
    _fault("groupnorm_faults:IndivisibleAccepted", "errors", ["groupnorm.init.indivisible"], family=_GN),
    _fault("groupnorm_faults:SingleValueGroupsRaise", "errors", ["groupnorm.output.channels-only"],
           trigger="a batch of one, one channel per group, no spatial extent", family=_GN),
    _fault("groupnorm_faults:HalfReturnsFloat32", "dtype", ["groupnorm.output.shape-dtype"], trigger="float16/bfloat16",
           family=_GN),
    _fault("groupnorm_faults:BackwardIgnoresWeight", "gradients", ["groupnorm.grad.reference"], trigger="affine=True",
           family=_GN),
    _fault("groupnorm_faults:BackwardStatisticsConstant", "gradients", ["groupnorm.grad.reference"], family=_GN),
    _fault("instancenorm_faults:StatisticsOverBatch", "layout", ["instancenorm.train.output"], trigger="batch size > 1",
           subset=True, family=_IN),
    _fault("instancenorm_faults:UnbatchedNormalizedAsOneInstance", "layout", ["instancenorm.train.output"],
           trigger="unbatched inputs", family=_IN),
    _fault("instancenorm_faults:StridesIgnored", "layout", ["instancenorm.train.output"],
           trigger="strided or channels-last inputs", family=_IN),
    _fault("instancenorm_faults:UnbiasedVarianceNormalizes", "numerics", ["instancenorm.train.output"], family=_IN),
    _fault("instancenorm_faults:EpsOutsideSqrt", "numerics", ["instancenorm.train.output"],
           trigger="tiny variance or large eps", family=_IN),
    _fault("instancenorm_faults:HalfPrecisionAccumulation", "dtype", ["instancenorm.train.output"],
           trigger="float16/bfloat16", family=_IN),
    _fault("instancenorm_faults:AffineFalseKeepsParameters", "state and API", ["instancenorm.init.no-affine"], family=_IN),
    _fault("instancenorm_faults:BiasFalseIgnored", "state and API", ["instancenorm.init.no-bias"], family=_IN),
    _fault("instancenorm_faults:ParametersNotTrainable", "state and API", ["instancenorm.init.affine"], family=_IN),
    _fault("instancenorm_faults:SingleElementAccepted", "errors", ["instancenorm.train.single-element-error"], family=_IN),
    _fault("instancenorm_faults:SingleElementRaisesInEval", "errors", ["instancenorm.eval.single-element"],
           trigger="eval mode without running statistics", family=_IN),
    _fault("instancenorm_faults:HalfReturnsFloat32", "dtype", ["instancenorm.output.shape-dtype"],
           trigger="float16/bfloat16", family=_IN),
    _fault("instancenorm_faults:BackwardStatisticsConstant", "gradients", ["instancenorm.grad.reference"],
           trigger="train mode or untracked", family=_IN),
    _fault("instancenorm_faults:EvalBackwardThroughInstanceStats", "gradients", ["instancenorm.grad.reference"],
           trigger="tracked eval mode", family=_IN),
    _fault("instancenorm_faults:BackwardIgnoresWeight", "gradients", ["instancenorm.grad.reference"],
           trigger="affine=True", family=_IN),
    _fault("instancenorm_running:TrainUsesRunningStats", "mode", ["instancenorm.train.output"],
           trigger="track_running_stats=True", family=_IN),
    _fault("instancenorm_running:EvalIgnoresRunningStats", "mode", ["instancenorm.eval.output"],
           trigger="tracked eval mode", family=_IN),
    _fault("instancenorm_running:RunningStatsUpdatedInEval", "mode", ["instancenorm.eval.frozen-stats"], subset=True,
           family=_IN),
    _fault("instancenorm_running:FrozenAfterEval", "mode", ["instancenorm.mode.switching"], trigger="train after eval",
           family=_IN),
    _fault("instancenorm_running:RunningStatsFromFirstSample", "running statistics", ["instancenorm.train.running-update"],
           trigger="batch size > 1", family=_IN),
    _fault("instancenorm_running:RunningVarPooledOverBatch", "running statistics", ["instancenorm.train.running-update"],
           trigger="batch size > 1", family=_IN),
    _fault("instancenorm_running:BiasedRunningVariance", "running statistics", ["instancenorm.train.running-update"],
           subset=True, family=_IN),
    _fault("instancenorm_running:InvertedMomentum", "running statistics", ["instancenorm.train.running-update"],
           trigger="momentum != 0.5", family=_IN),
    _fault("instancenorm_running:RunningVarStartsAtZero", "running statistics", ["instancenorm.init.running-stats"],
           family=_IN),
    _fault("instancenorm_running:UntrackedKeepsBuffers", "state and API", ["instancenorm.untracked"], family=_IN),
]

ALTERNATIVES += [
    _alternative("norm_alternatives:Baseline", "groupnorm", subset=False),
    _alternative("norm_alternatives:FoldedScaleShift", "groupnorm"),
    _alternative("norm_alternatives:DeclaredBiasedRunningVariance", "instancenorm"),
]

MEMBERS = FAULTS + ALTERNATIVES
