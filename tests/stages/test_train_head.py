"""The training step's LM head: on a CPU, TRL's fused head projects only the positions that carry loss, with the
loss and gradients it gives when it projects every position (a tiny random model: the logic, not the model)."""
import torch


def _tiny_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from trl.trainer.utils import add_fused_lm_head
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False))
    add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))   # what SFTTrainer adds
    return model


def _loss_and_grad(model, ids, labels):
    model.zero_grad()
    out = model(input_ids=ids, labels=labels, fused_lm_head=True)
    out.loss.backward()
    return out.loss.item(), model.model.layers[0].mlp.up_proj.weight.grad.clone()


def test_cpu_head_scores_only_the_answer_positions_with_the_same_loss_and_gradients(monkeypatch):
    import trl.trainer.utils as trl_utils

    from s2d.training import score_labelled_positions_only
    model = _tiny_model()
    ids = torch.randint(0, 300, (2, 10))
    labels = torch.full_like(ids, -100)
    labels[0, 7:], labels[1, 5:8] = ids[0, 7:], ids[1, 5:8]   # the answers: 3 + 3 positions carry loss
    rows = []
    apply = trl_utils._ChunkedLogProbFunction.apply

    def counted(hidden, *args):
        rows.append(hidden.shape[0])
        return apply(hidden, *args)
    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counted)
    # TRL's own choice, also where an earlier in-process training of this worker already wrapped it; restored after.
    monkeypatch.setattr(trl_utils, "_use_triton", getattr(trl_utils._use_triton, "s2d_original", trl_utils._use_triton))
    every_loss, every_grad = _loss_and_grad(model, ids, labels)
    score_labelled_positions_only()
    score_labelled_positions_only()   # twice: wrapped once
    compact_loss, compact_grad = _loss_and_grad(model, ids, labels)
    # Shifted by one (position t predicts token t+1): 2 x 9 positions scored before, the 6 labelled ones after.
    assert rows == [18, 6]
    assert abs(compact_loss - every_loss) < 1e-6
    assert torch.allclose(compact_grad, every_grad, atol=1e-6)
