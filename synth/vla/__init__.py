"""The bundled vision-language-action model: prompt, encoders, DiT flow-matching expert, training, evaluation."""
